"""An admin expires unlabelled audit samples explicitly: recorded, audited, counted, and then purgeable."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from calibration import services as calibration
from calibration.models import ExpiredAudit
from flk_site.testing import logged_in, make_pcs, reset_config_memos
from ingest import replay
from ingest.models import PcsRecord
from policy.models import VerifyParams
from review import services
from review.models import AuditEvent, ReviewItem

ADMIN_LIST = "/admin/review/reviewitem/"


def _every_pcs_is_audited() -> None:
    VerifyParams.objects.filter(is_active=True).update(audit_rate=1.0, bootstrap_audit_rate=1.0, dedup_ttl_days=7)
    reset_config_memos()


def _expire_in_the_admin(admin: Client, items) -> str:
    response = admin.post(
        ADMIN_LIST, {"action": "expire_audit_samples", "_selected_action": [i.pk for i in items]}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def test_an_expired_audit_sample_is_recorded_audited_and_then_purged(
    submit, unsigned_default_tenant, make_user, settings
):
    _every_pcs_is_audited()
    pcs = make_pcs()
    submit(pcs)
    item = ReviewItem.objects.get(pcs_id=pcs["pcs_id"])
    alice = make_user("alice")
    assert services.claim_next(alice) == item  # a claim event: the trail must outlive the purge
    PcsRecord.objects.update(received_at=timezone.now() - timedelta(days=8))
    assert replay.purge_expired_outcomes() == 0  # waiting for its label: kept past the TTL

    root = make_user("root", staff=True, reviewer=False)
    root.is_superuser = True
    root.save(update_fields=["is_superuser"])
    admin = logged_in(root)
    page = _expire_in_the_admin(admin, [item])

    assert "Expired 1 audit sample without a label" in page
    item.refresh_from_db()
    assert (item.stage, item.claimed_by) == ("done", None)
    assert ExpiredAudit.objects.filter(tenant="default", pcs_id=pcs["pcs_id"], expired_by="root").exists()
    assert AuditEvent.objects.filter(item=item, action="expire", user__username="root").count() == 1
    assert calibration.label_for("default", pcs["pcs_id"]) is None  # given up, not labelled
    assert calibration.audit_completion("default")["default"].expired == 1

    assert replay.purge_expired_outcomes() == 1
    assert not ReviewItem.objects.exists()
    trail = list(AuditEvent.objects.order_by("at", "id").values_list("action", "pcs_id", "item_id"))
    assert trail == [("claim", pcs["pcs_id"], None), ("expire", pcs["pcs_id"], None)]


def test_expiry_leaves_labelled_and_non_audit_items_alone(make_user, queue_items, settings):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 1.0  # the labelled item waits for a second opinion
    labelled, waiting = queue_items(2, decision="accept", audit_sample=True)
    (escalation,) = queue_items(1)
    alice = make_user("alice")
    assert services.claim_next(alice) == labelled
    services.label_item(alice, labelled.pk, "benign")
    root = make_user("root", staff=True)

    expired = services.expire_audit_items(root, [labelled.pk, waiting.pk, escalation.pk])

    assert expired == [waiting]
    assert list(ExpiredAudit.objects.values_list("pcs_id", flat=True)) == [waiting.pcs_id]
    stages = dict(ReviewItem.objects.values_list("pk", "stage"))
    assert stages == {labelled.pk: "second", waiting.pk: "done", escalation.pk: "first"}
    assert services.expire_audit_items(root, [waiting.pk]) == []  # twice changes nothing
    assert AuditEvent.objects.filter(action="expire").count() == 1


def test_a_staff_member_without_the_permission_cannot_expire(make_user, queue_items):
    (item,) = queue_items(1, decision="accept", audit_sample=True)
    admin = logged_in(make_user("clerk", staff=True))
    admin.post(ADMIN_LIST, {"action": "expire_audit_samples", "_selected_action": [item.pk]})
    item.refresh_from_db()
    assert item.stage == "first" and not ExpiredAudit.objects.exists()
