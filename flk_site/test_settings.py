"""Settings for the test suite: the real local PostgreSQL and Redis unless the environment says otherwise."""

from __future__ import annotations

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flk")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("FLK_ALLOW_UNSIGNED", "1")
# Tests other than the rate-limit ones send bursts far above the production default; those set their own.
os.environ.setdefault("TOKEN_RATE", "100000")
# Every test client is 127.0.0.1 and tests send junk on purpose; the security tests set their own limits.
os.environ.setdefault("FLK_PREAUTH_ADDRESS_RATE", "100000")
os.environ.setdefault("FLK_PREAUTH_FAILURE_RATE", "100000")
os.environ.setdefault("FLK_WAL_TOTAL_BUDGET_BYTES", str(64 * 1024**3))
os.environ.setdefault("FLK_WAL_TENANT_BUDGET_BYTES", str(16 * 1024**3))
os.environ.setdefault("FLK_WAL_MIN_FREE_BYTES", "0")
os.environ.setdefault("FLK_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))

# Under `pytest -n N` each worker process (gw0, gw1, ...) gets its own test database (pytest-django adds the
# suffix), and here its own Redis database (rate-limit buckets, cache, broker queues) and its own var dir, so
# workers never see each other's state. Subprocesses the tests start inherit both through the environment.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and not os.environ.get("FLK_TEST_WORKER_ENV"):
    _base, _, _db = os.environ["REDIS_URL"].rpartition("/")
    os.environ["REDIS_URL"] = f"{_base}/{(int(_db or 0) + int(_worker[2:])) % 16}"
    os.environ["FLK_VAR_DIR"] = os.path.join(os.environ["FLK_VAR_DIR"], _worker)
    os.environ["FLK_TEST_WORKER_ENV"] = _worker  # once per process, even if these settings are read again

from flk_site.settings import *  # noqa: E402, F403

# Tasks run in the test process unless a test starts a real worker.
CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
