"""Project-wide middleware: JSON errors under /v1/, a 503 when the database is away, query parameters without NUL
characters, HSTS, and no caching of the pages that show PCS, labels and accounts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.template.loader import render_to_string

from flk_site import errors
from ingest.requestlog import API_PREFIX
from ingest.services import DATABASE_UNAVAILABLE, unavailable
from ingest.views import render

log = logging.getLogger("flk.request")


class ApiErrorsAsJsonMiddleware:
    """Every error under /v1/ is JSON, also the debug pages Django shows with ``DJANGO_DEBUG=1`` (``make run``).

    Without debug the handlers of ``flk_site.errors`` already answer JSON; with it Django answers an unknown
    path, a Host it does not serve and an unhandled exception with HTML pages (the exception is logged as
    ever). The status and headers such as ``Retry-After`` and ``Allow`` are kept.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith(API_PREFIX)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        answer = errors.api_error(request, response.status_code)
        for name in ("Retry-After", "Allow", "WWW-Authenticate"):
            if name in response:
                answer[name] = response[name]
        return answer


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
        if request.path.startswith(API_PREFIX):
            return render(unavailable(DATABASE_UNAVAILABLE, "database_unavailable"))
        retry_after = settings.FLK_RETRY_AFTER_SECONDS
        response = HttpResponse(render_to_string("503.html", {"retry_after": retry_after}), status=503)
        response["Retry-After"] = str(retry_after)
        return response


class NulFreeQueryMiddleware:
    """Drops NUL characters from query parameters: PostgreSQL text cannot hold them, so a filter such as
    ``?decision=%00`` in the admin would fail in the database with a 500. Without them it is just a value
    that matches nothing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "%00" in request.META.get("QUERY_STRING", ""):
            pairs = [(key, value) for key, values in request.GET.lists() for value in values]
            request.GET = QueryDict(
                urlencode([(key.replace("\x00", ""), value.replace("\x00", "")) for key, value in pairs])
            )
        return self.get_response(request)


class HstsMiddleware:
    """``Strict-Transport-Security`` on every answer when FLK_HTTPS is on.

    Django's SecurityMiddleware sends it only on requests it sees as HTTPS, which behind a TLS proxy depends
    on trusting X-Forwarded-Proto. Sent on plain HTTP too it does no harm: browsers ignore the header on an
    insecure connection (RFC 6797, section 8.1) and honour it on the first HTTPS answer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.FLK_HTTPS and settings.SECURE_HSTS_SECONDS:
            value = f"max-age={settings.SECURE_HSTS_SECONDS}"
            if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
                value += "; includeSubDomains"
            response.headers.setdefault("Strict-Transport-Security", value)
        return response


# Pages whose content is a reviewer's view of PCS and labels, or an account's: never kept by a browser or a
# shared cache, where the next user of the machine could read them (the admin sets this itself).
NO_STORE_PREFIXES = ("/review/", "/accounts/")


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on the review pages and the account pages (logging in and out)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(NO_STORE_PREFIXES):
            response["Cache-Control"] = "no-store"
        return response
