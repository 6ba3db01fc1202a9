"""503 with Retry-After, instead of a 500, for any page or API call that fails because the database is away."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

log = logging.getLogger("flk.request")


class DatabaseUnavailableMiddleware:
    """Turns a database that cannot be reached (or a transient failure of it) in a view into a 503.

    The submit path answers its own 503s (its body is kept in the WAL); this covers the rest: the
    outcome API, the review pages, the admin, logging in. JSON under /v1/, a short page elsewhere.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        log.warning("database_unavailable", extra={"event": "database_unavailable", "path": request.path})
        retry_after = settings.FLK_RETRY_AFTER_SECONDS
        if request.path.startswith("/v1/"):
            detail = {"detail": "the database is unavailable, retry later", "code": "database_unavailable"}
            response: HttpResponse = JsonResponse(detail, status=503)
        else:
            response = HttpResponse(render_to_string("503.html", {"retry_after": retry_after}), status=503)
        response["Retry-After"] = str(retry_after)
        return response
