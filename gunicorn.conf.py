"""Production configuration read by plain ``gunicorn flk_site.wsgi`` (gunicorn loads ./gunicorn.conf.py).

Everything comes from the environment (docs/operators/configuration.md); command-line flags still win.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path

from gunicorn.glogging import Logger

_ROOT = Path(__file__).resolve().parent


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{name}={value!r} must be a positive integer")
    return int(value)


bind = [os.environ.get("FLK_BIND") or "0.0.0.0:8000"]
workers = _int("WEB_CONCURRENCY", 2 * (os.cpu_count() or multiprocessing.cpu_count()))
worker_class = os.environ.get("FLK_GUNICORN_WORKER_CLASS") or "sync"
if worker_class not in ("sync", "gthread"):
    # Sync views only: ASGI/async workers were measured three times slower with this code base.
    raise SystemExit(f"FLK_GUNICORN_WORKER_CLASS={worker_class!r} must be sync or gthread")
threads = _int("FLK_GUNICORN_THREADS", 4 if worker_class == "gthread" else 1)
timeout = _int("FLK_GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("FLK_GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("FLK_GUNICORN_KEEPALIVE", 5)
# Workers are forked after the app is imported in each; no preload, so a worker's database and Redis
# connections are its own.
preload_app = False
accesslog = os.environ.get("FLK_ACCESS_LOG", "-") or None
errorlog = "-"
# Behind a TLS-terminating proxy Django decides whether X-Forwarded-Proto is trusted
# (DJANGO_TRUST_X_FORWARDED_PROTO) alone: gunicorn passes the header through and never rewrites the scheme,
# gunicorn would otherwise mark a request https on its own from a loopback proxy's header.
secure_scheme_headers: dict[str, str] = {}


def _prepare_multiproc_dir() -> str:
    """A clean PROMETHEUS_MULTIPROC_DIR: stale files from an earlier run would add old counts to new ones."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        path = Path(configured)
        if path.exists():
            for child in path.iterdir():
                if child.is_file() and child.suffix == ".db":
                    child.unlink()
        path.mkdir(parents=True, exist_ok=True)
    else:
        base = Path(os.environ.get("FLK_VAR_DIR") or _ROOT / "var") / "prometheus"
        base.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="multiproc-", dir=base))
    # Set before any worker imports prometheus_client, so every worker writes its samples to files.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return str(path)


_multiproc_dir = _prepare_multiproc_dir()


def child_exit(server, worker) -> None:
    # The dead worker's live gauges are dropped; its counters stay in the merged totals.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if os.path.basename(_multiproc_dir).startswith("multiproc-"):
        shutil.rmtree(_multiproc_dir, ignore_errors=True)


def _cut(value: str | None, limit: int) -> str | None:
    """What a client sent (a header, a path), at most ``limit`` characters: the log line stays a line."""
    if value is None or len(value) <= limit:
        return value
    return f"{value[:limit]}…[{len(value) - limit} more]"


class JsonAccessLogger(Logger):
    """One JSON object per request: method, path (no query string), status, bytes, duration, client."""

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "event": "http_access",
            "method": _cut(environ.get("REQUEST_METHOD"), 16),
            "path": _cut(environ.get("PATH_INFO"), 256),
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "remote": _cut(environ.get("REMOTE_ADDR"), 64),
            "tenant": _cut(environ.get("HTTP_X_TENANT_ID"), 64),
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(json.dumps(record, separators=(",", ":")))
        except Exception:
            self.error("access log record failed")


logger_class = JsonAccessLogger
