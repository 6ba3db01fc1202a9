"""/readyz answers from a result at most FLK_READYZ_MAX_AGE_SECONDS old, and says which check failed only
to the metrics credentials."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ingest import health

pytestmark = pytest.mark.django_db
METRICS = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"scraper:scrape-pass").decode()}


@pytest.fixture(autouse=True)
def _fresh(settings, tmp_path):
    settings.METRICS_USER, settings.METRICS_PASS = "scraper", "scrape-pass"
    settings.FLK_WAL_DIR = tmp_path / "wal"
    health.readiness.clear()
    yield
    health.readiness.clear()


@pytest.fixture
def counted_checks(monkeypatch):
    calls = []
    real = health._run_checks

    def counting():
        calls.append(time.monotonic())
        return real()

    monkeypatch.setattr(health, "_run_checks", counting)
    return calls


def test_many_callers_cost_one_check_per_interval(client, counted_checks, settings):
    settings.FLK_READYZ_MAX_AGE_SECONDS = 2.0
    answers = [client.get("/readyz").status_code for _ in range(200)]
    assert set(answers) == {200}
    assert len(counted_checks) == 1


def test_concurrent_callers_wait_for_one_check(counted_checks, settings):
    settings.FLK_READYZ_MAX_AGE_SECONDS = 2.0
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: health.readiness.checks(), range(64)))
    assert len(counted_checks) == 1 and all(r == results[0] for r in results)


def test_the_result_is_renewed_once_it_is_older_than_the_limit(client, counted_checks, settings):
    settings.FLK_READYZ_MAX_AGE_SECONDS = 0.2
    client.get("/readyz")
    time.sleep(0.25)
    client.get("/readyz")
    assert len(counted_checks) == 2


def test_details_only_for_the_metrics_credentials(client):
    anonymous = client.get("/readyz")
    assert anonymous.json() == {"status": "ready"}
    assert anonymous["Cache-Control"] == "no-store"
    wrong = client.get("/readyz", HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"scraper:guess").decode())
    assert "checks" not in wrong.json()
    assert client.get("/readyz", **METRICS).json()["checks"] == {"database": "ok", "wal": "ok", "migrations": "ok"}


def test_a_failure_is_a_503_for_everyone_but_named_only_with_credentials(client, settings, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    settings.FLK_WAL_DIR = blocked
    anonymous = client.get("/readyz")
    assert anonymous.status_code == 503 and anonymous.json() == {"status": "unavailable"}
    assert client.get("/readyz", **METRICS).json()["checks"]["wal"].startswith("not writable")
