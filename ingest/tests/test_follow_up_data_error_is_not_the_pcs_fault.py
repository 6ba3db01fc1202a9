"""A follow-up write of ours that PostgreSQL refuses with a data error (the review item of an escalated PCS) is
not the PCS's fault: the submission, single or in a batch, is answered as for a database failure (503 with
Retry-After, the body kept in the WAL), never 400 ``pcs_unstorable``, which tells an agent to drop a good PCS.
Sent again once the fault is gone, the PCS is stored with its review item."""

from __future__ import annotations

import json

import pytest

from flk_site.testing import make_pcs, signed
from ingest import wal
from ingest.models import PcsRecord
from review.models import ReviewItem


@pytest.fixture(autouse=True)
def own_wal(settings, tmp_path):
    settings.FLK_WAL_DIR = tmp_path / "wal"
    yield
    wal.close_writers()


def kept_in_the_wal() -> set[str]:
    return {json.loads(record.body)["pcs_id"] for record in wal.iter_records()}


def escalated() -> dict:
    return signed(make_pcs(degraded=True, coh_star=0.2))


def test_a_single_submission_is_a_503_kept_for_replay(
    submit, hmac_default_tenant, transactional_db, database_refuses_review_item
):
    pcs = escalated()
    with database_refuses_review_item:
        answer = submit(pcs)
    assert (answer.status_code, answer.json()["code"]) == (503, "database_unavailable"), answer.content
    assert answer["Retry-After"]
    assert not PcsRecord.objects.filter(pcs_id=pcs["pcs_id"]).exists()
    assert pcs["pcs_id"] in kept_in_the_wal()

    again = submit(pcs)
    assert again.status_code == 202
    assert ReviewItem.objects.filter(pcs_id=pcs["pcs_id"]).count() == 1


def test_a_batch_is_a_503_kept_for_replay(client, hmac_default_tenant, transactional_db, database_refuses_review_item):
    batch = [escalated() for _ in range(3)]
    body = json.dumps(batch)
    with database_refuses_review_item:
        answer = client.generic("POST", "/v1/pcs/batch", body, content_type="application/json")
    assert answer.status_code == 503 and answer["Retry-After"], answer.content
    assert "pcs_unstorable" not in answer.content.decode()
    assert not PcsRecord.objects.filter(pcs_id__in=[p["pcs_id"] for p in batch]).exists()
    assert {p["pcs_id"] for p in batch} <= kept_in_the_wal()

    again = client.generic("POST", "/v1/pcs/batch", body, content_type="application/json")
    assert [item["status"] for item in again.json()["results"]] == [202] * 3
    assert ReviewItem.objects.filter(pcs_id__in=[p["pcs_id"] for p in batch]).count() == 3
