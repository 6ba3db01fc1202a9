"""Every HTML page has a Content-Security-Policy (no inline script without a nonce), review pages and outcome
answers are not stored by caches, logged header values are cut short, and a refused request is one log line."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import requests

from flk_site.testing import bearer, issue_api_key, make_pcs

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.django_db


def csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/", "/review/", "/admin/", "/api/docs/",
                                 "/admin/tenancy/tenant/", "/admin/policy/verifyparams/"])  # fmt: skip
def test_every_html_page_has_a_policy_without_inline_script(admin_client, url):
    response = admin_client.get(url, follow=True)
    assert response.status_code == 200
    policy = csp(response)
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    html = response.content.decode()
    nonce = next((s[len("'nonce-") : -1] for s in policy["script-src"] if s.startswith("'nonce-")), None)
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or (nonce and f'nonce="{nonce}"' in tag), tag
    assert "javascript:" not in html
    assert not re.search(r"\son[a-z]+=\"", html), "inline event handlers are inline script"


def test_the_templates_and_review_scripts_hold_no_inline_script():
    for path in [*(ROOT / "templates").rglob("*.html"), *(ROOT / "review").rglob("*.html")]:
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or "nonce=" in tag, f"{path}: {tag}"
        assert "javascript:" not in text and not re.search(r"\son[a-z]+=\"", text), path
    for path in (ROOT / "review" / "static").rglob("*.js"):
        assert not re.search(r"\beval\(|new Function\(", path.read_text()), path


def test_review_pages_and_outcome_answers_are_not_stored(admin_client, client, make_tenant, submit):
    assert admin_client.get("/review/")["Cache-Control"] == "no-store"
    assert admin_client.get("/review/stats/")["Cache-Control"] == "no-store"
    make_tenant("acme", sign_alg="none")
    key = bearer(issue_api_key("acme"))
    pcs = make_pcs()
    submit(pcs, tenant="acme")
    for headers in (key, {}):  # the answer and the refusal alike
        answer = client.get(f"/v1/pcs/{pcs['pcs_id']}", HTTP_X_TENANT_ID="acme", **headers)
        assert answer["Cache-Control"] == "no-store"


@pytest.fixture
def service_log():
    """What the service's configured console handler writes (its filters and formatter), as JSON objects."""
    from django.conf import settings as django_settings
    from django.utils.log import configure_logging

    stream = io.StringIO()
    config = json.loads(json.dumps(django_settings.LOGGING, default=str))
    config["handlers"]["console"]["stream"] = stream
    config["formatters"]["json"]["()"] = "pythonjsonlogger.json.JsonFormatter"
    configure_logging(django_settings.LOGGING_CONFIG, config)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        configure_logging(django_settings.LOGGING_CONFIG, django_settings.LOGGING)


def test_a_403_is_one_line_without_a_traceback(client, service_log):
    from django.contrib.auth.models import Group, User

    from review.models import REVIEWERS_GROUP

    reviewer = User.objects.create_user("rita", password="not-used-here")
    reviewer.groups.add(Group.objects.get_or_create(name=REVIEWERS_GROUP)[0])
    client.force_login(reviewer)  # django-axes logs the login: the lines of the request come after it
    before = len(service_log())
    assert client.get("/review/audit/").status_code == 403  # the audit trail is for staff
    lines = service_log()[before:]
    assert len(lines) == 1 and lines[0]["status_code"] == 403
    assert "exc_info" not in lines[0] and "Traceback" not in json.dumps(lines[0])


def test_an_api_refusal_is_the_request_log_line_alone(client, service_log):
    answer = client.get(f"/v1/pcs/{'0' * 64}", HTTP_X_TENANT_ID="nobody")
    assert answer.status_code == 401
    assert [r["logger"] for r in service_log()] == ["flk.request"]


def test_a_long_header_is_cut_short_in_every_log(client, service_log):
    client.get("/v1/pcs/" + "0" * 64, HTTP_X_TENANT_ID="t" * 8000)
    client.get("/" + "p" * 8000)
    text = json.dumps(service_log())
    assert "t" * 300 not in text and "p" * 300 not in text


def test_gunicorns_access_log_cuts_long_header_values(gunicorn_service):
    service = gunicorn_service(workers=1)
    requests.get(f"{service.url}/v1/pcs/{'0' * 64}", headers={"X-Tenant-Id": "t" * 8000}, timeout=10)
    requests.get(f"{service.url}/{'p' * 6000}", timeout=10)
    service.stop()
    log = service.log_path.read_text()
    assert '"event":"http_access"' in log
    assert "t" * 300 not in log and "p" * 300 not in log
