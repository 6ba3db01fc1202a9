"""Behind a TLS-terminating proxy: X-Forwarded-Proto is trusted only when configured; redirects only on demand."""

from __future__ import annotations

import requests

from flk_site.testing import issue_api_key, make_pcs

OUTCOME = f"/v1/pcs/{make_pcs()['pcs_id']}"
FROM_PROXY = {"X-Forwarded-Proto": "https"}


def _get(service, path: str, headers: dict[str, str] | None = None) -> requests.Response:
    """GET with an API key of the default tenant: the outcome API answers past its key check."""
    key = {"Authorization": f"Bearer {issue_api_key()}"}
    return requests.get(f"{service.url}{path}", headers={**key, **(headers or {})}, allow_redirects=False, timeout=10)


def test_plain_http_is_served_without_redirect_by_default(gunicorn_service):
    service = gunicorn_service(workers=1)
    assert _get(service, OUTCOME).status_code == 404  # the API answered, no redirect


def test_a_forwarded_proto_header_is_ignored_unless_trusted(gunicorn_service):
    service = gunicorn_service(workers=1, DJANGO_SECURE_SSL_REDIRECT="1")
    redirected = _get(service, OUTCOME, FROM_PROXY)
    assert redirected.status_code == 301
    assert redirected.headers["Location"].startswith("https://")


def test_a_trusted_forwarded_proto_header_marks_the_request_secure(gunicorn_service):
    service = gunicorn_service(workers=1, DJANGO_SECURE_SSL_REDIRECT="1", DJANGO_TRUST_X_FORWARDED_PROTO="1")
    assert _get(service, OUTCOME, FROM_PROXY).status_code == 404
    assert _get(service, OUTCOME).status_code == 301  # plain HTTP still goes to https
    # Probes and scrapers speak plain HTTP inside the cluster.
    assert _get(service, "/healthz").status_code == 200
