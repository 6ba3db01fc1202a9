"""Fixtures shared by the whole suite; plain factories live in flk_site.testing."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer

from flk_site.testing import HMAC_KEY, body, ensure_defaults, reset_config_memos

# The live test server listens with socketserver's backlog of 5; tests that open fifty connections at once
# would see resets from the kernel, not from the service.
ThreadedWSGIServer.request_queue_size = 128


@pytest.fixture(autouse=True)
def _fresh_config_memos():
    """Each test starts with no tenant, key or params copied in memory from an earlier test."""
    reset_config_memos()
    yield
    reset_config_memos()


@pytest.fixture
def submit(client):
    """POST a PCS (dict or raw bytes) to /v1/pcs/submit with the test client; returns the response."""

    def _submit(pcs: dict[str, Any] | bytes | str, tenant: str | None = None, content_type: str = "application/json"):
        data = pcs if isinstance(pcs, (bytes, str)) else body(pcs)
        headers = {"HTTP_X_TENANT_ID": tenant} if tenant is not None else {}
        return client.generic("POST", "/v1/pcs/submit", data, content_type=content_type, **headers)

    return _submit


@pytest.fixture
def hmac_default_tenant(settings, db):
    """The default tenant signs with HMAC under the key "testkey", as PCS_SIGN_ALG=hmac configures it."""
    ensure_defaults()
    settings.PCS_SIGN_ALG = "hmac"
    settings.PCS_HMAC_KEYS = [HMAC_KEY.decode()]
    settings.PCS_ED25519_PUB_KEYS = []


@pytest.fixture
def unsigned_default_tenant(settings, db):
    ensure_defaults()
    settings.PCS_SIGN_ALG = "none"


@pytest.fixture
def make_tenant(db):
    """Create a tenant with keys: make_tenant("acme", hmac={"k1": "secret"}, ed25519={"e1": pub_b64})."""
    from ingest.models import SigningKey, Tenant

    ensure_defaults()

    def _make(
        name: str,
        *,
        sign_alg: str = "hmac",
        enabled: bool = True,
        hmac: dict[str, str] | None = None,
        ed25519: dict[str, str] | None = None,
        **key_fields: Any,
    ):
        tenant = Tenant.objects.create(name=name, sign_alg=sign_alg, enabled=enabled)
        for key_id, secret in (hmac or {}).items():
            SigningKey.objects.create(tenant=tenant, key_id=key_id, algorithm="hmac", secret=secret, **key_fields)
        for key_id, pub in (ed25519 or {}).items():
            SigningKey.objects.create(
                tenant=tenant, key_id=key_id, algorithm="ed25519", public_key_b64=pub, **key_fields
            )
        return tenant

    return _make
