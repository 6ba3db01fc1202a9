"""Error pages: JSON for the API under /v1/, Django's pages elsewhere.

An agent whose request Django refuses before any view runs (a Host the service does not answer to, an
unknown path) reads the reason in the same JSON shape as every other API error, not in an HTML page, with
``DJANGO_DEBUG=1`` too, where Django answers with its debug pages instead of these handlers
(``flk_site.middleware.ApiErrorsAsJsonMiddleware``).
"""

from __future__ import annotations

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.views import defaults

from ingest.requestlog import API_PREFIX
from ingest.services import error
from ingest.views import render


def _api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


_CODES = {403: "forbidden", 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


def api_error(request: HttpRequest, status: int) -> HttpResponse:
    """The JSON error of the API for an answer Django made as a page (``status``), e.g. a debug page."""
    if status == 400:
        try:
            request.get_host()
        except DisallowedHost as exc:
            return bad_request(request, exc)
        return render(error(400, "bad_request", "the request was refused before it reached the API"))
    if status == 404:
        return page_not_found(request, Exception())
    if status >= 500:
        return render(error(status, "server_error", "internal error; it has been logged"))
    return render(error(status, _CODES.get(status, "refused"), f"the request was refused (HTTP {status})"))


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        host = request.META.get("HTTP_HOST", "")[:255]
        return render(error(400, "disallowed_host", f"this service does not answer to the host {host!r}"))
    return render(error(400, "bad_request", "the request was refused before it reached the API"))


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _api(request):
        return defaults.page_not_found(request, exception)
    return render(error(404, "not_found", f"no API endpoint at {request.path[:200]}"))


def server_error(request: HttpRequest) -> HttpResponse:
    if not _api(request):
        return defaults.server_error(request)
    return render(error(500, "server_error", "internal error; it has been logged"))
