"""Endpoints for orchestrators and scrapers: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` says the process answers (no dependency is touched, so a database outage does not get every
pod restarted). ``/readyz`` says this instance can take submissions: the database answers, the inbox WAL
can be written and every migration is applied; it answers 503 naming the checks that failed.
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


def readyz(_request: HttpRequest) -> HttpResponse:
    database = _check_database()
    checks = {
        "database": database,
        "wal": _check_wal(),
        # Migrations cannot be read without the database; one failure is reported once.
        "migrations": _check_migrations() if database is None else "unknown (database unreachable)",
    }
    failed = {name: problem for name, problem in checks.items() if problem is not None}
    body = {"status": "unavailable" if failed else "ready", "checks": {n: p or "ok" for n, p in checks.items()}}
    if failed:
        log.warning("not_ready", extra={"event": "not_ready", "failed": ",".join(sorted(failed))})
    return JsonResponse(body, status=503 if failed else 200)


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
