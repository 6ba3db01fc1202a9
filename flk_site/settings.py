"""Settings of the FLK verifier, every one read from the environment (docs/operators/configuration.md).

With nothing set the service runs on an embedded SQLite file under ``var/`` with in-process tasks and a
per-process rate limiter, so one command brings it up; production sets ``DATABASE_URL`` and ``REDIS_URL``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

from flk_site.env import apply_local_settings, env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FLK_VAR_DIR") or BASE_DIR / "var")
# The settings `make run` chose for this checkout's local trial (README "Quick start"), so that `manage.py`
# commands in another shell see the same service; any variable set in the environment wins over the file.
LOCAL_SETTINGS_FILE = VAR_DIR / "local.env"
LOCAL_SETTINGS = apply_local_settings(LOCAL_SETTINGS_FILE)

DEBUG = env_bool("DJANGO_DEBUG", False)
_DEV_SECRET = "dev-only-insecure-secret-key-never-use-in-production-0123456789"
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off "
            f"(for a local trial, `make run` once keeps its settings in {LOCAL_SETTINGS_FILE})"
        )
    SECRET_KEY = _DEV_SECRET
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
# Probes and scrapers inside the cluster speak plain HTTP to the pod.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# FLK_HTTPS=1: browsers reach the service only over HTTPS (TLS at a proxy or the ingress), whether or not the
# service redirects plain HTTP itself: cookies are Secure and every answer carries HSTS.
FLK_HTTPS = env_bool("FLK_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = FLK_HTTPS or SECURE_SSL_REDIRECT
SECURE_HSTS_SECONDS = env_int("FLK_HSTS_SECONDS", 31536000, minimum=0) if FLK_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("FLK_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every answer (django-csp): scripts only from this origin or with the response's
# nonce (``request.csp_nonce``), nothing framed, no plugins. Styles allow inline: the admin's change list and the
# Swagger UI page carry <style> blocks of their own.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "csp",
    "axes",
    "calibration",
    "tenancy",
    "policy",
    "ingest",
    "review",
]

MIDDLEWARE = [
    "ingest.requestlog.RequestLogMiddleware",
    "flk_site.middleware.ApiErrorsAsJsonMiddleware",  # outside every layer that may answer with a page
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "flk_site.middleware.HstsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "flk_site.middleware.NulFreeQueryMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "flk_site.middleware.NoStoreMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires: it turns a lockout into its answer
    "flk_site.middleware.DatabaseUnavailableMiddleware",  # django-prometheus, below, sees the exception first
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "flk_site.urls"
WSGI_APPLICATION = "flk_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)}
else:
    # The embedded database holds tenants' signing secrets and password hashes: owner-only, like var/ itself.
    # SQLite gives its -wal and -shm files the database file's mode.
    VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(VAR_DIR / "flk.sqlite3", os.O_RDWR | os.O_CREAT, 0o600))
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "flk.sqlite3",
            "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast instead of hanging a worker when the database is unreachable: the submit path answers
    # 503 + Retry-After and keeps the body in the WAL.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("FLK_DB_CONNECT_TIMEOUT", 3, minimum=1)
    )
    # Django's cursors bind client-side and never prepare. The outcome insert of the submit path asks psycopg
    # to prepare it explicitly (ingest/store.py), which psycopg refuses while the threshold is None (its off
    # switch); a threshold no query reaches keeps everything else as it was. Off for a connection pooler
    # that cannot keep prepared statements (PgBouncer in transaction mode before 1.21).
    if env_bool("FLK_DB_PREPARED_STATEMENTS", True):
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2**31 - 1)
    if os.environ.get("FLK_TEST_DB_NAME"):
        DATABASES["default"]["TEST"] = {"NAME": os.environ["FLK_TEST_DB_NAME"]}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache and Celery -------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = env_str("FLK_CELERY_QUEUE") or "flk"
CELERY_BEAT_SCHEDULE = {
    "calibration-recalibrate": {"task": "calibration.tasks.recalibrate", "schedule": 3600.0},
    "calibration-check-drift": {"task": "calibration.tasks.check_drift", "schedule": 3600.0},
    "calibration-check-miscoverage": {"task": "calibration.tasks.check_miscoverage", "schedule": 6 * 3600.0},
    # A sweep catches any body a crashed worker left without an outcome; a no-op when all are stored.
    "ingest-replay-wal": {"task": "ingest.tasks.replay_wal", "schedule": 900.0},
    "ingest-purge-wal-segments": {"task": "ingest.tasks.purge_wal_segments", "schedule": 6 * 3600.0},
    "ingest-purge-expired-outcomes": {"task": "ingest.tasks.purge_expired_outcomes", "schedule": 6 * 3600.0},
    "ingest-complete-stale-batch-jobs": {"task": "ingest.tasks.complete_stale_batch_jobs", "schedule": 60.0},
}

# --- Auth, i18n, static ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Logins are throttled by django-axes: after FLK_LOGIN_FAILURE_LIMIT failures a user name, and separately a
# client address (ingest.client_address: X-Forwarded-For only from FLK_TRUSTED_PROXIES), is locked out for
# FLK_LOGIN_LOCKOUT_MINUTES (429) without a password being hashed; lockouts are listed, and lifted, in admin
# (Axes -> Access attempts). A success resets the count.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("FLK_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("FLK_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "ingest.client_address.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/review/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("FLK_STATIC_ROOT") or VAR_DIR / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
try:  # whitenoise warns at every start when the directory is missing (before the first collectstatic)
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
except OSError:
    pass

# --- REST framework and OpenAPI ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "FLK verifier API",
    "DESCRIPTION": "Verification of Proof-of-Computation Summaries (PCS) sent by agents.",
    "VERSION": "1.0.0",
    # OpenAPI 3.1: its schemas are JSON Schema 2020-12 (ingest/openapi.py), which answers are validated against.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our own static files: nothing is loaded from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- The verifier ------------------------------------------------------------------------------------
PCS_SIGN_ALG = env_choice("PCS_SIGN_ALG", "none", ("none", "hmac", "ed25519"))
PCS_HMAC_KEYS = env_list("PCS_HMAC_KEYS") + ([k] if (k := env_str("PCS_HMAC_KEY")) else [])
PCS_ED25519_PUB_KEYS = env_list("PCS_ED25519_PUB_KEYS") + ([k] if (k := env_str("PCS_ED25519_PUB_B64")) else [])
# The oldest PCS protocol version the default tenant accepts (other tenants: Tenant.min_pcs_version in admin).
# 0.1 until its agents all send 0.2 (docs/operators/deployment.md, "Rollout of PCS 0.2"); then 0.2.
PCS_MIN_VERSION = env_choice("PCS_MIN_VERSION", "0.1", ("0.1", "0.2"))
# The one switch for unsigned PCS, for every tenant: the start-up check below (default tenant), tenant
# validation in admin and in the model, and the signature check of each request. On by default only with
# DJANGO_DEBUG=1 (the `make run` trial).
FLK_ALLOW_UNSIGNED = env_bool("FLK_ALLOW_UNSIGNED", DEBUG)
if PCS_SIGN_ALG == "none" and not FLK_ALLOW_UNSIGNED:
    raise ImproperlyConfigured(
        "PCS_SIGN_ALG=none accepts unsigned PCS: set PCS_SIGN_ALG=hmac or ed25519 with its keys, "
        "or FLK_ALLOW_UNSIGNED=1 to run unsigned on purpose"
    )
if PCS_SIGN_ALG == "hmac" and not PCS_HMAC_KEYS:
    raise ImproperlyConfigured("PCS_SIGN_ALG=hmac needs PCS_HMAC_KEY or PCS_HMAC_KEYS")
if PCS_SIGN_ALG == "ed25519" and not PCS_ED25519_PUB_KEYS:
    raise ImproperlyConfigured("PCS_SIGN_ALG=ed25519 needs PCS_ED25519_PUB_B64 or PCS_ED25519_PUB_KEYS")

FLK_MAX_BODY_BYTES = env_int("FLK_MAX_BODY_BYTES", 65536, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = FLK_MAX_BODY_BYTES
# POST /v1/pcs/batch: at most this many PCS (413 above) in a body of at most this many bytes (413 above).
FLK_BATCH_MAX_ITEMS = env_int("FLK_BATCH_MAX_ITEMS", 500, minimum=1)
FLK_BATCH_MAX_BYTES = env_int("FLK_BATCH_MAX_BYTES", 8 * 1024 * 1024, minimum=65536)
# A batch answered 202 still pending this long after receipt lost its task message (a Redis restarted without
# persistence, a worker killed mid-task): the sweep ingest.tasks.complete_stale_batch_jobs judges it.
FLK_BATCH_JOB_STALE_SECONDS = env_int("FLK_BATCH_JOB_STALE_SECONDS", 300, minimum=30)
FLK_WAL_DIR = Path(env_str("FLK_WAL_DIR") or VAR_DIR / "wal")
FLK_WAL_RETENTION_DAYS = env_int("FLK_WAL_RETENTION_DAYS", 14, minimum=1)
FLK_WAL_SEGMENT_BYTES = env_int("FLK_WAL_SEGMENT_BYTES", 64 * 1024 * 1024, minimum=4096)
FLK_WAL_SEGMENT_SECONDS = env_float("FLK_WAL_SEGMENT_SECONDS", 3600.0, minimum=1.0)
FLK_REPLAY_WORKERS = env_int("FLK_REPLAY_WORKERS", 4, minimum=1)
TOKEN_RATE = env_float("TOKEN_RATE", 100.0, minimum=0.001)
TOKEN_BURST = env_float("TOKEN_BURST", 2 * TOKEN_RATE, minimum=1)
FLK_RETRY_AFTER_SECONDS = env_int("FLK_RETRY_AFTER_SECONDS", 5, minimum=1)
# Before a signature is checked (docs/operators/security.md): requests per second per client address, failed
# authentications per second per tenant (past them the tenant's bodies are authenticated before they are
# stored), and the WAL bytes unauthenticated bodies may spend per window, per tenant and in total.
FLK_PREAUTH_ADDRESS_RATE = env_float("FLK_PREAUTH_ADDRESS_RATE", 200.0, minimum=0.001)
FLK_PREAUTH_ADDRESS_BURST = env_float("FLK_PREAUTH_ADDRESS_BURST", 2 * FLK_PREAUTH_ADDRESS_RATE, minimum=1)
FLK_PREAUTH_FAILURE_RATE = env_float("FLK_PREAUTH_FAILURE_RATE", 1.0, minimum=0.001)
FLK_PREAUTH_FAILURE_BURST = env_float("FLK_PREAUTH_FAILURE_BURST", 20.0, minimum=1)
FLK_WAL_TENANT_BUDGET_BYTES = env_int("FLK_WAL_TENANT_BUDGET_BYTES", 64 * 1024 * 1024, minimum=65536)
FLK_WAL_TOTAL_BUDGET_BYTES = env_int("FLK_WAL_TOTAL_BUDGET_BYTES", 512 * 1024 * 1024, minimum=65536)
FLK_WAL_BUDGET_WINDOW_SECONDS = env_float("FLK_WAL_BUDGET_WINDOW_SECONDS", 3600.0, minimum=1.0)
# The WAL writes nothing more (503) once its file system has less than this free; 0 turns the check off.
FLK_WAL_MIN_FREE_BYTES = env_int("FLK_WAL_MIN_FREE_BYTES", 256 * 1024 * 1024, minimum=0)
# Proxies (addresses or CIDR networks) whose X-Forwarded-For names the client; empty: the peer is the client.
FLK_TRUSTED_PROXIES = env_list("FLK_TRUSTED_PROXIES")
# How long a process may serve tenants, keys and VerifyParams from memory before re-reading them when
# no change was announced (announcements travel through the cache; this bounds staleness if one is lost).
FLK_CONFIG_MAX_AGE_SECONDS = env_float("FLK_CONFIG_MAX_AGE_SECONDS", 30.0, minimum=0.0)

# Calibration (docs/calibration.md): set size and window, label debounce, drift and miscoverage alarm levels.
FLK_CALIBRATION_MAX_SIZE = env_int("FLK_CALIBRATION_MAX_SIZE", 5000, minimum=1)
FLK_CALIBRATION_WINDOW_DAYS = env_float("FLK_CALIBRATION_WINDOW_DAYS", 180.0, minimum=1.0)
FLK_CALIBRATION_DEBOUNCE_SECONDS = env_float("FLK_CALIBRATION_DEBOUNCE_SECONDS", 10.0, minimum=0.0)
# Monitors (docs/calibration.md, Tasks): drift martingale over benign audit scores, miscoverage of benign audit
# labels with Benjamini-Hochberg across tenants, and the audit's own alarm (stale or silent labelling).
FLK_DRIFT_MIN_LABELS = env_int("FLK_DRIFT_MIN_LABELS", 50, minimum=1)
FLK_DRIFT_JUMP = env_float("FLK_DRIFT_JUMP", 0.01, minimum=0.0)
FLK_DRIFT_HOLD_HOURS = env_float("FLK_DRIFT_HOLD_HOURS", 24.0, minimum=0.0)
FLK_MISCOVERAGE_WINDOW_DAYS = env_float("FLK_MISCOVERAGE_WINDOW_DAYS", 7.0, minimum=0.1)
FLK_AUDIT_STALE_HOURS = env_float("FLK_AUDIT_STALE_HOURS", 72.0, minimum=1.0)
FLK_AUDIT_SILENT_HOURS = env_float("FLK_AUDIT_SILENT_HOURS", 48.0, minimum=1.0)
FLK_DRIFT_LEVEL = env_float("FLK_DRIFT_LEVEL", 0.01, minimum=1e-9)
FLK_MISCOVERAGE_LEVEL = env_float("FLK_MISCOVERAGE_LEVEL", 0.01, minimum=1e-9)
FLK_CALIBRATION_PARAMS_PROVIDER = "policy.params.calibration_params"
FLK_CALIBRATION_TRAFFIC_PROVIDER = "ingest.calibration_feeds.recent_traffic_scores"

METRICS_USER = env_str("METRICS_USER")
METRICS_PASS = env_str("METRICS_PASS")
if bool(METRICS_USER) != bool(METRICS_PASS):  # one alone would leave /metrics at 404 without a word
    raise ImproperlyConfigured(
        "METRICS_USER and METRICS_PASS go together: set both (Basic Auth on /metrics) or neither"
    )
# Scrape-time collectors added to /metrics: dotted paths of callables returning a prometheus_client collector.
FLK_METRICS_COLLECTORS: list[str] = [
    "calibration.metrics.calibration_collector",
    "review.metrics.review_queue_collector",
]
# Review queue: how long a claim holds, how long a label can be undone, the share sent for a second opinion,
# and how many independent (blind) labels every item needs (disagreeing ones go to an adjudicator).
FLK_REVIEW_CLAIM_SECONDS = env_int("FLK_REVIEW_CLAIM_SECONDS", 600, minimum=10)
FLK_REVIEW_UNDO_SECONDS = env_int("FLK_REVIEW_UNDO_SECONDS", 300, minimum=1)
FLK_REVIEW_SECOND_OPINION_RATE = env_float("FLK_REVIEW_SECOND_OPINION_RATE", 0.1, minimum=0.0)
FLK_REVIEW_LABELS_PER_ITEM = env_int("FLK_REVIEW_LABELS_PER_ITEM", 1, minimum=1)
FLK_BENCH_NOOP = env_bool("FLK_BENCH_NOOP", False)
# Whether this process serves the pages people log in to (admin, review, login). The `web` pool of Compose and
# Helm turns them off: logins (password hashing) run on the `console` pool, so a login flood cannot slow ingest.
FLK_CONSOLE_PAGES = env_bool("FLK_CONSOLE_PAGES", True)
# /readyz answers from a result at most this old (seconds), so calling it in a loop costs nothing more.
FLK_READYZ_MAX_AGE_SECONDS = env_float("FLK_READYZ_MAX_AGE_SECONDS", 2.0, minimum=0.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # One JSON object per line (FLK_LOG_FORMAT=plain for reading by eye); e-mails and phone numbers redacted.
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
        },
    },
    "filters": {
        "redact": {"()": "ingest.logging_redaction.RedactPersonalData"},
        "refusals": {"()": "ingest.logging_redaction.OneLinePerRefusal"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env_choice("FLK_LOG_FORMAT", "json", ("json", "plain")),
            "filters": ["refusals", "redact"],
        }
    },
    "root": {
        "handlers": ["console"],
        "level": env_choice("FLK_LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")).upper(),
    },
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
if not REDIS_URL:  # beat of the embedded default runs its tasks in-process (memory transport): no broker host to name
    LOGGING["loggers"]["kombu.connection"] = {"level": "ERROR"}
