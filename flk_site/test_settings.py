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

from flk_site.settings import *  # noqa: F403

# Tasks run in the test process unless a test starts a real worker.
CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
