"""A label is stored with reviewer and time, joins the tenant's calibration set, and can be undone briefly."""

from __future__ import annotations

from datetime import timedelta

from calibration import services as calibration
from calibration.models import CalibrationLabel
from calibration.scoring import ScoreFormula
from flk_site.testing import bearer, issue_api_key, logged_in
from review.models import AuditEvent, ReviewItem, ReviewLabel


def _claimed(make_user, queue_items, name="alice", **item_kwargs):
    (item,) = queue_items(1, **item_kwargs)
    client = logged_in(make_user(name))
    assert client.post("/review/next/")["Location"] == f"/review/item/{item.pk}/"
    return client, item


def test_a_label_is_stored_with_reviewer_time_and_note(make_user, queue_items, settings):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    client, item = _claimed(make_user, queue_items)
    response = client.post(f"/review/item/{item.pk}/label/", {"label": "anomalous", "note": "looks forged"})
    assert response.status_code == 302
    row = ReviewLabel.objects.get(item=item)
    assert (row.label, row.reviewer.username, row.note, row.withdrawn_at) == (
        "anomalous",
        "alice",
        "looks forged",
        None,
    )
    item.refresh_from_db()
    assert item.stage == "done" and item.claimed_by is None
    assert AuditEvent.objects.filter(item=item, action="label", detail="anomalous").exists()


def test_an_escalation_label_joins_the_calibration_set_with_its_provenance(make_user, queue_items):
    client, item = _claimed(make_user, queue_items, score=0.31)
    client.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    row = CalibrationLabel.objects.get(tenant="default", pcs_id=item.pcs_id)
    record = item.record
    signals = {"D_hat": record.d_hat, "coh_star": record.coh_star, "r": record.r}
    assert (row.label, row.provenance, row.signals, row.decision) == ("benign", "escalation", signals, "escalate")
    # The label keeps the signals and is scored under the active formula, not the stored score of the record.
    assert row.score == ScoreFormula().score(signals) and row.formula_key == ScoreFormula().key


def test_an_audit_label_keeps_its_inclusion_probability_and_conformal_flag(make_user, queue_items):
    client, item = _claimed(make_user, queue_items, decision="escalate", audit_sample=True)
    record = item.record
    record.audit_probability = 0.02
    record.response = {**record.response, "conformal": {"p_value": 0.01, "delta": 0.05, "n": 300}}
    record.save(update_fields=["audit_probability", "response"])
    client.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    row = CalibrationLabel.objects.get(tenant="default", pcs_id=item.pcs_id)
    assert (row.provenance, row.inclusion_probability, row.flagged, row.p_value, row.snapshot_n, row.delta) == (
        "audit",
        0.02,
        True,
        0.01,
        300,
        0.05,
    )
    assert row.origin.startswith("review:")


def test_an_audit_sample_label_has_audit_provenance(make_user, queue_items):
    client, item = _claimed(make_user, queue_items, decision="accept", audit_sample=True)
    client.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    assert calibration.label_for("default", item.pcs_id)["provenance"] == "audit"


def test_a_benign_audit_label_changes_the_snapshot_once_recalibration_runs(make_user, queue_items):
    from calibration.tasks import recalibrate

    recalibrate(tenant="default")
    before = calibration.current_snapshot("default")
    # By default only audit samples form a tenant's calibration set (escalations would bias it).
    client, item = _claimed(make_user, queue_items, score=0.5, decision="accept", audit_sample=True)
    client.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    recalibrate(tenant="default")
    calibration.snapshot_memo.clear()
    after = calibration.current_snapshot("default")
    assert after is not None and after.n == (before.n if before else 0) + 1
    record = item.record
    assert ScoreFormula().score({"D_hat": record.d_hat, "coh_star": record.coh_star, "r": record.r}) in after.scores


def test_a_label_that_is_neither_benign_nor_anomalous_is_refused_and_changes_nothing(make_user, queue_items):
    client, item = _claimed(make_user, queue_items)
    response = client.post(f"/review/item/{item.pk}/label/", {"label": "maybe"}, follow=True)
    assert response.status_code == 200 and b"label must be one of" in response.content
    assert not ReviewLabel.objects.exists() and not CalibrationLabel.objects.exists()
    item.refresh_from_db()
    assert item.stage == "first" and item.claimed_by is not None


def test_undo_withdraws_the_label_and_gives_the_item_back(make_user, queue_items, settings):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    client, item = _claimed(make_user, queue_items)
    client.post(f"/review/item/{item.pk}/label/", {"label": "anomalous"})
    response = client.post("/review/undo/")
    assert response["Location"] == f"/review/item/{item.pk}/"
    assert calibration.label_for("default", item.pcs_id) is None
    item.refresh_from_db()
    assert item.stage == "first" and item.claimed_by.username == "alice"
    client.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    assert calibration.label_for("default", item.pcs_id)["label"] == "benign"
    assert list(ReviewLabel.objects.filter(item=item).values_list("label", flat=True)) == ["anomalous", "benign"]
    assert [e.action for e in AuditEvent.objects.filter(item=item).order_by("id")] == [
        "claim",
        "label",
        "undo",
        "label",
    ]


def test_undo_after_the_window_is_refused_and_keeps_the_label(make_user, queue_items, settings):
    settings.FLK_REVIEW_UNDO_SECONDS = 300
    client, item = _claimed(make_user, queue_items)
    client.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    row = ReviewLabel.objects.get(item=item)
    ReviewLabel.objects.filter(pk=row.pk).update(created_at=row.created_at - timedelta(seconds=301))
    response = client.post("/review/undo/", follow=True)
    assert b"nothing to undo" in response.content
    assert calibration.label_for("default", item.pcs_id)["label"] == "benign"
    assert ReviewItem.objects.get(pk=item.pk).stage != "first"


def test_the_outcome_api_shows_the_label(make_user, queue_items, client):
    reviewer, item = _claimed(make_user, queue_items)
    key = bearer(issue_api_key())
    assert client.get(f"/v1/pcs/{item.pcs_id}", **key).json()["label"] is None
    reviewer.post(f"/review/item/{item.pk}/label/", {"label": "anomalous"})
    label = client.get(f"/v1/pcs/{item.pcs_id}", **key).json()["label"]
    assert (label["label"], label["provenance"]) == ("anomalous", "escalation")


def test_a_note_with_a_nul_byte_is_stored_without_it(make_user, queue_items):
    client, item = _claimed(make_user, queue_items)
    response = client.post(f"/review/item/{item.pk}/label/", {"label": "benign", "note": "odd\x00note"})
    assert response.status_code == 302
    assert ReviewLabel.objects.get(item=item).note == "oddnote"


def test_labelling_an_item_that_does_not_exist_is_not_found(make_user, queue_items):
    client, _item = _claimed(make_user, queue_items)
    assert client.post("/review/item/999999/label/", {"label": "benign"}).status_code == 404
    assert not ReviewLabel.objects.exists()
