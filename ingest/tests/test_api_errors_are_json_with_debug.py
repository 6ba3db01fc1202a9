"""Under `make run` (DJANGO_DEBUG=1) every /v1/ error is JSON, as without debug; other pages keep Django's."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def debug(settings):
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["testserver"]


def test_an_unknown_api_path_is_a_json_404(client, debug):
    response = client.get("/v1/no-such-endpoint")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "no API endpoint at /v1/no-such-endpoint", "code": "not_found"}


def test_a_host_the_service_does_not_answer_to_is_a_json_400(client, debug):
    response = client.post("/v1/pcs/submit", b"{}", content_type="application/json", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json()["code"] == "disallowed_host"


def test_a_method_not_allowed_keeps_its_allow_header(client, debug):
    response = client.put("/v1/pcs/submit")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json" and "POST" in response["Allow"]


def test_pages_outside_the_api_keep_the_debug_page(client, debug):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
