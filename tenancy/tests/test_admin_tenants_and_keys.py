"""Tenants and their signing keys through the admin: HMAC secrets shown once, Ed25519 keys validated, rotation."""

from __future__ import annotations

import re

import pytest

from flk_site.testing import ed25519_public_b64, make_pcs, signed
from tenancy.models import ApiKey, SigningKey, Tenant

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/tenancy/tenant/add/"


def tenant_form(name: str = "acme", keys: list[dict] | None = None, api_keys: list[str] = (), **fields) -> dict:
    """The tenant's add form with signing keys (dicts of fields) and API keys (their names)."""
    keys = keys or []
    data = {"name": name, "enabled": "on", "sign_alg": "hmac", "min_pcs_version": "0.2", "rate_per_second": "",
            "burst": "", **fields,
            "signing_keys-TOTAL_FORMS": str(len(keys)), "signing_keys-INITIAL_FORMS": "0",
            "signing_keys-MIN_NUM_FORMS": "0", "signing_keys-MAX_NUM_FORMS": "1000",
            "api_keys-TOTAL_FORMS": str(len(api_keys)), "api_keys-INITIAL_FORMS": "0",
            "api_keys-MIN_NUM_FORMS": "0", "api_keys-MAX_NUM_FORMS": "1000"}  # fmt: skip
    for n, key in enumerate(keys):
        defaults = {"key_id": f"k{n}", "algorithm": "hmac", "public_key_b64": "", "valid_from_0": "",
                    "valid_from_1": "", "valid_until_0": "", "valid_until_1": ""}  # fmt: skip
        data.update({f"signing_keys-{n}-{k}": v for k, v in {**defaults, **key}.items()})
    for n, api_key_name in enumerate(api_keys):
        data[f"api_keys-{n}-name"] = api_key_name
    return data


def shown_secret(response, kind: str, name: str) -> str:
    """The secret the one-time page shows for the key ``name`` of ``kind`` ("HMAC secret", "API key")."""
    pattern = rf'<code class="one-time-secret" data-kind="{kind}" data-name="{name}">([^<]+)</code>'
    return re.search(pattern, response.content.decode()).group(1)


def test_an_hmac_secret_is_generated_and_shown_once(admin_client, ensure_default_tenant, submit):
    response = admin_client.post(ADD_URL, tenant_form(keys=[{"key_id": "k1"}]))
    secret = shown_secret(response, "HMAC secret", "k1")
    key = SigningKey.objects.get(key_id="k1")
    assert key.secret == secret and len(secret) >= 40
    page = admin_client.get(f"/admin/tenancy/tenant/{key.tenant_id}/change/").content.decode()
    assert secret not in page and "shown once" in page
    # the agent signs with the secret it was shown and is accepted
    assert submit(signed(make_pcs(), key=secret.encode()), tenant="acme").status_code == 200


def test_an_api_key_is_issued_shown_once_and_stored_only_as_its_digest(admin_client, ensure_default_tenant, client):
    response = admin_client.post(ADD_URL, tenant_form(sign_alg="none", api_keys=["grafana"]))
    key = shown_secret(response, "API key", "grafana")
    assert key.startswith("flk_")
    stored = ApiKey.objects.get(name="grafana")
    assert stored.digest == ApiKey.digest_of(key) and key.startswith(stored.prefix) and key != stored.digest
    page = admin_client.get(f"/admin/tenancy/tenant/{stored.tenant_id}/change/").content.decode()
    assert key not in page and stored.prefix in page
    # the tenant's outcomes now need the key
    pcs_id = "0" * 64
    assert client.get(f"/v1/pcs/{pcs_id}", HTTP_X_TENANT_ID="acme").status_code == 401
    authorized = client.get(f"/v1/pcs/{pcs_id}", HTTP_X_TENANT_ID="acme", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert authorized.status_code == 404  # past the key check: no such PCS


def test_a_malformed_ed25519_public_key_is_refused_with_the_field_named(admin_client, ensure_default_tenant):
    data = tenant_form(sign_alg="ed25519", keys=[{"algorithm": "ed25519", "public_key_b64": "bm90IGEga2V5"}])
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors
    assert "public_key_b64" in errors[0]
    assert not Tenant.objects.filter(name="acme").exists()


def test_an_ed25519_key_verifies_the_agents_signatures(admin_client, ensure_default_tenant, submit):
    data = tenant_form(sign_alg="ed25519", keys=[{"key_id": "e1", "algorithm": "ed25519",
                                                  "public_key_b64": ed25519_public_b64()}])  # fmt: skip
    assert admin_client.post(ADD_URL, data).status_code == 302
    assert submit(signed(make_pcs(), alg="ed25519"), tenant="acme").status_code == 200


def test_valid_until_must_follow_valid_from(admin_client, ensure_default_tenant):
    key = {
        "valid_from_0": "2026-11-24",
        "valid_from_1": "12:00:00",
        "valid_until_0": "2026-11-24",
        "valid_until_1": "11:00:00",
    }
    response = admin_client.post(ADD_URL, tenant_form(keys=[key]))
    assert "valid_until" in response.context["inline_admin_formsets"][0].formset.errors[0]


def test_a_rotated_out_key_names_its_key_id_never_the_key(make_tenant, submit):
    make_tenant("acme", hmac={"old": "old-secret"}, valid_until="2020-01-01T00:00:00Z")
    SigningKey.objects.create(
        tenant=Tenant.objects.get(name="acme"), key_id="new", algorithm="hmac", secret="new-secret"
    )
    answer = submit(signed(make_pcs(), key=b"old-secret"), tenant="acme")
    assert answer.status_code == 401
    assert answer.json()["key_ids"] == ["new"]
    assert "secret" not in answer.content.decode()
    assert submit(signed(make_pcs(), key=b"new-secret"), tenant="acme").status_code == 200


def test_disabling_a_tenant_takes_effect_on_the_next_request(
    admin_client, make_tenant, submit, django_capture_on_commit_callbacks
):
    tenant = make_tenant("acme", hmac={"k1": "s1"})
    assert submit(signed(make_pcs(), key=b"s1"), tenant="acme").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):  # the change is announced once committed
        admin_client.post("/admin/tenancy/tenant/", {"action": "disable_tenants", "_selected_action": [tenant.pk]})
    answer = submit(signed(make_pcs(), key=b"s1"), tenant="acme")
    assert answer.status_code == 401 and answer.json()["code"] == "tenant_disabled"


def test_rate_overrides_are_saved_and_refused_when_out_of_range(admin_client, ensure_default_tenant):
    bad = admin_client.post(ADD_URL, tenant_form(rate_per_second="0", burst="0.5"))
    assert {"rate_per_second", "burst"} <= set(bad.context["adminform"].form.errors)
    assert admin_client.post(ADD_URL, tenant_form(rate_per_second="5", burst="20")).status_code == 302
    assert Tenant.objects.filter(name="acme", rate_per_second=5, burst=20).exists()


@pytest.fixture
def ensure_default_tenant(db):
    from flk_site.testing import ensure_defaults

    ensure_defaults()
