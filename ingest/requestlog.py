"""One structured log line and the HTTP metrics for every answer of the API (``/v1/...``).

The line carries the endpoint, status, latency and, once the submit path knows them, pcs_id and tenant:
never a body, a header value other than the tenant, or a query string.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from ingest import metrics

log = logging.getLogger("flk.request")
API_PREFIX = "/v1/"


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)  # a view's exception is already a 500 response here
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        endpoint = (match.url_name if match is not None else None) or "unmatched"
        metrics.http_response(endpoint, response.status_code, elapsed)
        answer = getattr(request, "flk_answer", None)
        log.info(
            "request",
            extra={
                "event": "request",
                "endpoint": endpoint,
                "method": request.method,
                "status": response.status_code,
                "latency_ms": round(elapsed * 1000, 3),
                "pcs_id": getattr(answer, "pcs_id", "") or None,
                "tenant": getattr(answer, "tenant", "") or request.META.get("HTTP_X_TENANT_ID", "default")[:64],
                "dedup": getattr(answer, "dedup", None),
            },
        )
        return response
