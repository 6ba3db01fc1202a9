"""/healthz says the process answers; /readyz says it can take submissions, naming what is missing."""

from __future__ import annotations

import base64

import pytest
import requests

from ingest import health

METRICS = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"scraper:scrape-pass").decode()}


@pytest.fixture(autouse=True)
def _fresh_readiness(settings):
    """Each test sees its own checks (the result is kept for two seconds), with metrics credentials set."""
    settings.METRICS_USER, settings.METRICS_PASS = "scraper", "scrape-pass"
    health.readiness.clear()
    yield
    health.readiness.clear()


def test_healthz_answers_without_touching_the_database(client):
    # No database fixture: any query would raise.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_the_database_the_wal_and_migrations(client, db, settings, tmp_path):
    settings.FLK_WAL_DIR = tmp_path / "wal"
    response = client.get("/readyz", **METRICS)
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "wal": "ok", "migrations": "ok"}}


def test_readyz_fails_when_the_wal_directory_cannot_be_written(client, db, settings, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the WAL directory should be")
    settings.FLK_WAL_DIR = blocked
    response = client.get("/readyz", **METRICS)
    assert response.status_code == 503
    assert response.json()["checks"]["wal"].startswith("not writable")
    assert response.json()["checks"]["database"] == "ok"


def test_readyz_fails_while_a_migration_is_not_applied(client, db, settings, tmp_path, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    settings.FLK_WAL_DIR = tmp_path / "wal"
    monkeypatch.setattr(health, "_migrations_applied", False)
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("pending", False)])
    response = client.get("/readyz", **METRICS)
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "1 not applied"


def test_with_the_database_unreachable_healthz_answers_and_readyz_says_why(gunicorn_service):
    # Nothing listens on port 1: PostgreSQL refuses the connection as a stopped server would.
    service = gunicorn_service(workers=1, DATABASE_URL="postgres://postgres@127.0.0.1:1/flk",
                               METRICS_USER="scraper", METRICS_PASS="scrape-pass")  # fmt: skip
    assert requests.get(f"{service.url}/healthz", timeout=10).status_code == 200
    ready = requests.get(f"{service.url}/readyz", auth=("scraper", "scrape-pass"), timeout=10)
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unreachable")
    assert body["checks"]["wal"] == "ok"
