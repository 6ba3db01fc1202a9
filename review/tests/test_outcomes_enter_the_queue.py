"""Escalated, rejected and audit-sample PCS wait for a label; accepted ones do not."""

from __future__ import annotations

from flk_site.testing import make_pcs, reset_config_memos
from review.models import ReviewItem


def test_an_escalated_pcs_waits_in_the_queue_with_its_reasons(submit, unsigned_default_tenant):
    pcs = make_pcs(degraded=True)
    assert submit(pcs).json()["decision"] == "escalate"
    item = ReviewItem.objects.get(pcs_id=pcs["pcs_id"])
    assert (item.tenant, item.decision, item.stage, item.shard_id) == ("default", "escalate", "first", pcs["shard_id"])
    assert item.reasons == ["degraded"]


def test_an_accepted_pcs_does_not_enter_the_queue(submit, unsigned_default_tenant):
    from policy.models import VerifyParams

    # Not an audit sample either: with the default shares, 20 % of a new tenant's PCS would be.
    VerifyParams.objects.filter(is_active=True).update(audit_rate=0.0, bootstrap_audit_rate=0.0)
    reset_config_memos()
    assert submit(make_pcs()).json()["decision"] == "accept"
    assert not ReviewItem.objects.exists()


def test_a_replayed_pcs_makes_no_second_item(submit, unsigned_default_tenant):
    pcs = make_pcs(degraded=True)
    submit(pcs)
    assert submit(pcs).json()["dedup"] is True
    assert ReviewItem.objects.filter(pcs_id=pcs["pcs_id"]).count() == 1


def test_an_audit_sample_of_accepted_pcs_waits_for_a_label(submit, unsigned_default_tenant):
    from policy.models import VerifyParams

    VerifyParams.objects.filter(is_active=True).update(audit_rate=1.0, bootstrap_audit_rate=1.0)
    reset_config_memos()
    pcs = make_pcs()
    assert submit(pcs).json()["decision"] == "accept"
    item = ReviewItem.objects.get(pcs_id=pcs["pcs_id"])
    assert item.audit_sample is True
    assert item.provenance == "audit"


def test_an_escalated_audit_sample_is_one_item_with_audit_provenance(submit, unsigned_default_tenant):
    from policy.models import VerifyParams

    VerifyParams.objects.filter(is_active=True).update(audit_rate=1.0, bootstrap_audit_rate=1.0)
    reset_config_memos()
    pcs = make_pcs(degraded=True)
    assert submit(pcs).json()["decision"] == "escalate"
    item = ReviewItem.objects.get(pcs_id=pcs["pcs_id"])
    assert (item.decision, item.audit_sample, item.provenance) == ("escalate", True, "audit")
