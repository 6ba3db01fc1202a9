"""Fixtures shared by the whole suite; plain factories live in flk_site.testing."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db.models.signals import post_migrate

from flk_site.testing import (
    HMAC_KEY,
    PostgresCluster,
    ServiceProcess,
    body,
    ensure_defaults,
    reset_config_memos,
    service_env,
)


def _restore_migration_data(sender, using="default", **kwargs):
    """A transactional test's flush empties every table, the data migrations' rows included, and then sends
    post_migrate: put those rows back, so a test sees the migrated database whichever test ran before it on its
    process (under `pytest -n` a process runs files in any order)."""
    if sender.label == "review" and using == "default":
        ensure_defaults()


post_migrate.connect(_restore_migration_data, dispatch_uid="flk-tests-restore-migration-data")

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
    from tenancy.models import SigningKey, Tenant

    ensure_defaults()

    def _make(
        name: str,
        *,
        sign_alg: str = "hmac",
        enabled: bool = True,
        hmac: dict[str, str] | None = None,
        ed25519: dict[str, str] | None = None,
        min_pcs_version: str = "0.2",
        **key_fields: Any,
    ):
        tenant = Tenant.objects.create(name=name, sign_alg=sign_alg, enabled=enabled, min_pcs_version=min_pcs_version)
        for key_id, secret in (hmac or {}).items():
            SigningKey.objects.create(tenant=tenant, key_id=key_id, algorithm="hmac", secret=secret, **key_fields)
        for key_id, pub in (ed25519 or {}).items():
            SigningKey.objects.create(
                tenant=tenant, key_id=key_id, algorithm="ed25519", public_key_b64=pub, **key_fields
            )
        return tenant

    return _make


@pytest.fixture
def gunicorn_service(transactional_db, tmp_path):
    """Start ``gunicorn flk_site.wsgi`` against the test database: gunicorn_service(PCS_SIGN_ALG="hmac", ...).

    The default tenant signs with HMAC key "testkey" unless overridden. Returns a ServiceProcess; every
    started service is stopped after the test.
    """
    import os

    from django.db import connection

    ensure_defaults()
    started: list[ServiceProcess] = []
    db = connection.settings_dict

    def _start(workers: int = 2, **env: str) -> ServiceProcess:
        database = (
            f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        base = service_env(database, os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"), tmp_path)
        service = ServiceProcess({**base, **env}, workers=workers)
        started.append(service)
        return service

    yield _start
    for service in started:
        service.stop()


@pytest.fixture
def real_celery_worker(tmp_path):
    """A ``celery -A flk_site worker`` subprocess on its own queue, against the test database.

    While it runs, tasks enqueued by the test process go to that queue instead of running eagerly. Yields
    the path of the worker's log.
    """
    import os
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    from django.db import connection

    from flk_site.celery import app as celery_app

    queue = f"flk-test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flk_site.settings",
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": os.environ["REDIS_URL"],
        "FLK_CELERY_QUEUE": queue,
        "DJANGO_SECRET_KEY": "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "FLK_ALLOW_UNSIGNED": "1",
        "FLK_VAR_DIR": str(tmp_path),
    }
    celery = str(Path(sys.executable).with_name("celery"))
    log_path = tmp_path / "worker.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [celery, "-A", "flk_site", "worker", "-Q", queue, "--pool", "solo", "--concurrency", "1", "--without-heartbeat",
         "--without-mingle", "--without-gossip", "--loglevel", "INFO"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    saved = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = False, queue
    try:
        yield log_path
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = saved
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def postgres_cluster():
    """A PostgreSQL cluster of the test's own (see flk_site.testing.PostgresCluster), removed afterwards."""
    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.remove()
