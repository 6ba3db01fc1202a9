"""The database down under a batch: 503 for the whole batch, every item kept in the WAL, stored by replay."""

from __future__ import annotations

import io
import json

import requests
from django.core.management import call_command
from django.db import connection

from flk_site.testing import make_pcs, signed
from ingest.models import PcsRecord
from ingest.tests.test_outages_database import db_proxy  # noqa: F401 (a fixture)

HEADERS = {"Content-Type": "application/json"}


def post_batch(service, pcs: list[dict]) -> requests.Response:
    return requests.post(f"{service.url}/v1/pcs/batch", data=json.dumps(pcs), headers=HEADERS, timeout=30)


def test_a_batch_during_an_outage_is_503_whole_and_replay_stores_every_item(
    gunicorn_service,
    db_proxy,  # noqa: F811
    settings,
    tmp_path,
):
    db = connection.settings_dict
    service = gunicorn_service(
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@127.0.0.1:{db_proxy.port}/{db['NAME']}"
    )
    before = [signed(make_pcs()) for _ in range(5)]
    assert [r["status"] for r in post_batch(service, before).json()["results"]] == [200] * 5

    # The tenant, its keys and the params are in the workers' memory: the batch is read, its items are
    # verified, and the database fails under the insert of their outcomes.
    db_proxy.cut()
    during = [signed(make_pcs()) for _ in range(10)]
    answer = post_batch(service, during)
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) >= 1
    assert answer.json()["code"] == "database_unavailable"
    assert not PcsRecord.objects.filter(pcs_id__in=[p["pcs_id"] for p in during]).exists()

    db_proxy.restore()
    settings.PCS_SIGN_ALG, settings.PCS_HMAC_KEYS = "hmac", ["testkey"]
    out = io.StringIO()
    call_command("replay_wal", dir=tmp_path / "wal", stdout=out)
    assert "10 stored" in out.getvalue()
    assert PcsRecord.objects.filter(pcs_id__in=[p["pcs_id"] for p in during], status_code=200).count() == 10
    # The client sends the batch again: each item gets the answer its first delivery would have had.
    again = post_batch(service, during).json()["results"]
    assert [(r["status"], r["body"]["decision"], r["body"]["dedup"]) for r in again] == [(200, "accept", True)] * 10
    assert PcsRecord.objects.count() == 15
