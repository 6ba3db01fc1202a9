"""Endpoints for orchestrators and scrapers: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` says the process answers (no dependency is touched, so a database outage does not get every
pod restarted). ``/readyz`` says this instance can take submissions: the database answers, the inbox WAL
can be written and every migration is applied; it answers 503 otherwise, from a result at most
FLK_READYZ_MAX_AGE_SECONDS old, and names the checks that failed only to the metrics credentials.
``/metrics`` is protected by Basic Auth when ``METRICS_USER`` and ``METRICS_PASS`` are both set; without
them it is open only when ``DJANGO_DEBUG`` is on and answers 404 otherwise (it does not exist, rather than
inviting credentials nobody configured).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest import metrics, wal

log = logging.getLogger("flk.health")
_migrations_applied = False  # once true it stays true for this process: code cannot lose migrations


def healthz(_request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        connections[DEFAULT_DB_ALIAS].close()  # the next request reconnects instead of reusing a dead socket
        return f"unreachable ({type(exc).__name__})"
    return None


def _check_migrations() -> str | None:
    global _migrations_applied
    if _migrations_applied:
        return None
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return f"cannot be read ({type(exc).__name__})"
    if pending:
        return f"{len(pending)} not applied"
    _migrations_applied = True
    return None


def _check_wal() -> str | None:
    try:
        wal.check_writable()
    except wal.WalUnavailable as exc:
        return f"not writable ({exc.__cause__.strerror if isinstance(exc.__cause__, OSError) else 'error'})"
    return None


def _run_checks() -> dict[str, str | None]:
    database = _check_database()
    checks = {
        "database": database,
        "wal": _check_wal(),
        # Migrations cannot be read without the database; one failure is reported once.
        "migrations": _check_migrations() if database is None else "unknown (database unreachable)",
    }
    failed = sorted(name for name, problem in checks.items() if problem is not None)
    if failed:
        log.warning("not_ready", extra={"event": "not_ready", "failed": ",".join(failed)})
    return checks


class Readiness:
    """The checks' last result, reused while younger than FLK_READYZ_MAX_AGE_SECONDS (default 2 s).

    A probe, or anyone on the internet, calling /readyz in a loop then costs one query and one synced probe
    file per process every couple of seconds, not per call: callers that find the result stale wait for
    the one of them that runs the checks (single flight) instead of each running their own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checks: dict[str, str | None] | None = None
        self._at = 0.0

    def _fresh(self) -> dict[str, str | None] | None:
        max_age = getattr(settings, "FLK_READYZ_MAX_AGE_SECONDS", 2.0)
        if self._checks is not None and time.monotonic() - self._at < max_age:
            return self._checks
        return None

    def checks(self) -> dict[str, str | None]:
        found = self._fresh()
        if found is not None:
            return found
        with self._lock:
            found = self._fresh()
            if found is None:
                found, self._checks, self._at = (checks := _run_checks()), checks, time.monotonic()
            return found

    def clear(self) -> None:
        with self._lock:
            self._checks = None


readiness = Readiness()


def readyz(request: HttpRequest) -> HttpResponse:
    """200 ready or 503 unavailable for everyone; which check failed only for the metrics credentials
    (or anyone with DJANGO_DEBUG=1 and no credentials configured, as for /metrics)."""
    checks = readiness.checks()
    failed = any(problem is not None for problem in checks.values())
    body: dict[str, object] = {"status": "unavailable" if failed else "ready"}
    if _may_see_details(request):
        body["checks"] = {name: problem or "ok" for name, problem in checks.items()}
    response = JsonResponse(body, status=503 if failed else 200)
    response["Cache-Control"] = "no-store"
    return response


def _may_see_details(request: HttpRequest) -> bool:
    if settings.METRICS_USER and settings.METRICS_PASS:
        return _authorized(request)
    return bool(settings.DEBUG)


def _authorized(request: HttpRequest) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # Both compared, always, in constant time: the answer's timing says nothing about which was wrong.
    user_ok = hmac.compare_digest(user.encode(), (settings.METRICS_USER or "").encode())
    pass_ok = hmac.compare_digest(password.encode(), (settings.METRICS_PASS or "").encode())
    return user_ok and pass_ok


def metrics_view(request: HttpRequest) -> HttpResponse:
    if settings.METRICS_USER and settings.METRICS_PASS:
        if not _authorized(request):
            response = HttpResponse(json.dumps({"detail": "credentials required"}), status=401,
                                    content_type="application/json")  # fmt: skip
            response["WWW-Authenticate"] = 'Basic realm="metrics", charset="UTF-8"'
            return response
    elif not settings.DEBUG:
        return HttpResponse(status=404)
    from prometheus_client import CONTENT_TYPE_LATEST

    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


class BenchNoopView(APIView):
    """A DRF endpoint that does nothing: the framework ceiling the benchmark compares the submit path to.

    Mounted only when ``FLK_BENCH_NOOP=1``.
    """

    def post(self, request: HttpRequest) -> Response:
        return Response({"ok": True})
