"""A batch whose review-queue write loses the database after its outcomes were inserted: the batch's one
transaction cannot commit, so the whole batch is a 503 (kept in the WAL), never 202 answers for outcomes that
were rolled back. Sent again once the database answers, it is stored with its review items."""

from __future__ import annotations

import json

from flk_site.testing import make_pcs, signed
from ingest.models import PcsRecord
from review.models import ReviewItem


def post_batch(client, pcs: list[dict]):
    return client.generic("POST", "/v1/pcs/batch", json.dumps(pcs), content_type="application/json")


def test_a_batch_whose_review_items_cannot_be_written_is_not_acknowledged(
    client, hmac_default_tenant, transactional_db, database_lost_at_review_item_insert
):
    escalated = [signed(make_pcs(degraded=True, coh_star=0.2)) for _ in range(3)]
    with database_lost_at_review_item_insert:
        answer = post_batch(client, escalated)
    acknowledged = [] if answer.status_code != 200 else [
        item for item in answer.json()["results"] if 200 <= item["status"] < 300]  # fmt: skip
    stored = PcsRecord.objects.filter(pcs_id__in=[p["pcs_id"] for p in escalated]).count()
    assert not acknowledged or stored == len(escalated), (answer.status_code, acknowledged, stored)
    assert answer.status_code == 503 and answer["Retry-After"]

    again = post_batch(client, escalated)
    assert [item["status"] for item in again.json()["results"]] == [202] * 3
    assert ReviewItem.objects.filter(pcs_id__in=[p["pcs_id"] for p in escalated]).count() == 3
