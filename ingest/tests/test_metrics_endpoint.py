"""/metrics: Basic Auth, counts that match what was sent under two gunicorn workers, extra collectors."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
import requests
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from flk_site.testing import make_pcs, signed

HEADERS = {"Content-Type": "application/json"}
AUTH = ("scraper", "s3cret-scrape")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_without_credentials_get_401_and_a_basic_challenge(client, settings, db):
    settings.METRICS_USER, settings.METRICS_PASS = AUTH
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic ")


def test_metrics_with_a_wrong_password_get_401(client, settings, db):
    settings.METRICS_USER, settings.METRICS_PASS = AUTH
    assert client.get("/metrics", HTTP_AUTHORIZATION=_basic("scraper", "guess")).status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic !!not-base64!!").status_code == 401


def test_metrics_with_the_credentials_are_served(client, settings, db):
    settings.METRICS_USER, settings.METRICS_PASS = AUTH
    response = client.get("/metrics", HTTP_AUTHORIZATION=_basic(*AUTH))
    assert response.status_code == 200
    assert "flk_ingest_total" in response.content.decode()


def test_metrics_without_configured_credentials_do_not_exist_in_production(client, settings, db):
    settings.METRICS_USER = settings.METRICS_PASS = None
    settings.DEBUG = False
    assert client.get("/metrics").status_code == 404


def test_metrics_without_configured_credentials_are_open_in_debug(client, settings, db):
    settings.METRICS_USER = settings.METRICS_PASS = None
    settings.DEBUG = True
    assert client.get("/metrics").status_code == 200


def queue_depth_collector():
    gauge = GaugeMetricFamily("flk_review_queue_test_depth", "A collector added through the setting.")
    gauge.add_metric([], 7)
    return _OneFamily(gauge)


class _OneFamily:
    def __init__(self, family):
        self.family = family

    def collect(self):
        yield self.family


def broken_collector():
    raise RuntimeError("the collector's database query failed")


def test_collectors_named_in_the_setting_are_scraped_and_a_broken_one_hides_nothing(client, settings, db):
    settings.METRICS_USER, settings.METRICS_PASS = AUTH
    settings.FLK_METRICS_COLLECTORS = [
        "ingest.tests.test_metrics_endpoint.broken_collector",
        "ingest.tests.test_metrics_endpoint.queue_depth_collector",
    ]
    response = client.get("/metrics", HTTP_AUTHORIZATION=_basic(*AUTH))
    assert response.status_code == 200
    samples = _samples(response.content.decode())
    assert samples[("flk_review_queue_test_depth", ())] == 7
    assert ("flk_rate_limit_degraded_total", ()) in samples


def test_counts_under_two_workers_match_what_was_sent(gunicorn_service, make_tenant):
    service = gunicorn_service(workers=2, METRICS_USER=AUTH[0], METRICS_PASS=AUTH[1])
    fresh = [json.dumps(signed(make_pcs())) for _ in range(12)]
    forged = [json.dumps(signed(make_pcs(), key=b"not-the-key")) for _ in range(2)]
    with requests.Session() as http:
        for data in fresh + fresh[:4] + forged:
            http.post(f"{service.url}/v1/pcs/submit", data=data, headers=HEADERS, timeout=10)
        http.post(f"{service.url}/v1/pcs/submit", data="{", headers=HEADERS, timeout=10)
    # Each scrape may be answered by either worker; every one must show the totals of both.
    scrapes = [requests.get(f"{service.url}/metrics", auth=AUTH, timeout=10) for _ in range(4)]
    for scrape in scrapes:
        assert scrape.status_code == 200
        got = _samples(scrape.text)
        tenant = (("tenant", "default"),)
        assert got[("flk_ingest_total", tenant)] == 19
        assert got[("flk_accepted_total", tenant)] == 12
        assert got[("flk_dedup_hits_total", tenant)] == 4
        assert got[("flk_signature_failures_total", (("code", "signature_invalid"), ("tenant", "default")))] == 2
        responses = {labels: v for (name, labels), v in got.items() if name == "flk_http_responses_total"}
        assert responses[(("code", "200"), ("endpoint", "pcs-submit"))] == 16
        assert responses[(("code", "401"), ("endpoint", "pcs-submit"))] == 2
        assert responses[(("code", "400"), ("endpoint", "pcs-submit"))] == 1
        assert got[("flk_request_duration_seconds_count", (("endpoint", "pcs-submit"),))] == 19
        # Verification runs before the insert finds a stored outcome: duplicates are verified too.
        assert got[("flk_verify_latency_seconds_count", ())] == 16
        assert ("django_http_requests_total_by_method_total", (("method", "POST"),)) in got


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"METRICS_USER": "scraper"}, "METRICS_USER and METRICS_PASS go together"),
        ({"METRICS_PASS": "secret"}, "METRICS_USER and METRICS_PASS go together"),
        ({"FLK_LOG_LEVEL": "loud"}, "FLK_LOG_LEVEL='loud' must be one of debug, info, warning, error, critical"),
    ],
)
def test_half_a_metrics_login_or_an_unknown_log_level_stops_the_start_with_the_variable_named(tmp_path, env, problem):
    base = {k: v for k, v in os.environ.items() if k not in ("METRICS_USER", "METRICS_PASS", "FLK_LOG_LEVEL")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**base, "DJANGO_SETTINGS_MODULE": "flk_site.settings", "DJANGO_DEBUG": "1", "FLK_VAR_DIR": str(tmp_path),
             **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert problem in result.stderr
