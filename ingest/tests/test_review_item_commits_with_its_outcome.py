"""An escalated PCS is stored with its review item or not at all: if the database goes away between the
outcome's insert and the review item's, the submission is a 503 (its body kept in the WAL), never a 202 for a
PCS no reviewer will see. Sent again once the database answers, it gets its outcome and its review item."""

from __future__ import annotations

from flk_site.testing import make_pcs, signed
from ingest.models import PcsRecord
from review.models import ReviewItem


def test_an_escalated_pcs_is_not_acknowledged_without_its_review_item(
    submit, hmac_default_tenant, transactional_db, database_lost_at_review_item_insert
):
    pcs = signed(make_pcs(degraded=True, coh_star=0.2))
    with database_lost_at_review_item_insert:
        answer = submit(pcs)
    stored = PcsRecord.objects.filter(pcs_id=pcs["pcs_id"]).exists()
    items = ReviewItem.objects.filter(pcs_id=pcs["pcs_id"]).count()
    assert not (200 <= answer.status_code < 300 and items == 0), (answer.status_code, stored, items)
    assert answer.status_code == 503 and answer["Retry-After"] and not stored

    again = submit(pcs)
    assert again.status_code == 202 and again.json()["decision"] == "escalate"
    assert ReviewItem.objects.filter(pcs_id=pcs["pcs_id"]).count() == 1


def test_an_accepted_pcs_is_stored_as_before(submit, hmac_default_tenant, transactional_db):
    pcs = signed(make_pcs())
    answer = submit(pcs)
    assert answer.status_code == 200
    record = PcsRecord.objects.get(pcs_id=pcs["pcs_id"])
    assert ReviewItem.objects.filter(pcs_id=pcs["pcs_id"]).exists() == record.audit_sample
