"""Independent labels per item; disagreements are listed and settled by an adjudicator whose label is final."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from calibration.models import CalibrationLabel
from calibration.services import label_for
from flk_site.testing import logged_in
from review.models import AuditEvent, ReviewLabel


@pytest.fixture
def three_labels(settings):
    settings.FLK_REVIEW_LABELS_PER_ITEM = 3
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0


@pytest.fixture
def two_labels(settings):
    settings.FLK_REVIEW_LABELS_PER_ITEM = 2
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0


def _adjudicator(make_user, name="carol"):
    user = make_user(name)
    user.user_permissions.add(Permission.objects.get(codename="adjudicate_reviewitem"))
    return user


def _label(client: Client, item, label: str, **extra) -> None:
    client.post(f"/review/item/{item.pk}/label/", {"label": label, **extra})


def test_an_item_waits_for_the_configured_number_of_independent_labels(three_labels, make_user, queue_items):
    (item,) = queue_items(1)
    reviewers = [logged_in(make_user(n)) for n in ("alice", "bob", "dave")]
    for i, client in enumerate(reviewers):
        assert client.post("/review/next/")["Location"] == f"/review/item/{item.pk}/"
        page = client.get(f"/review/item/{item.pk}/").content.decode()
        assert "by alice" not in page and "by bob" not in page  # blind: earlier labels are not shown
        _label(client, item, "benign")
        item.refresh_from_db()
        assert item.stage == ("done" if i == 2 else "second")
        assert client.post("/review/next/")["Location"] == "/review/"  # never the same item twice
    assert item.labels_needed == 3 and item.labels.count() == 3 and not item.disagreement
    assert label_for("default", item.pcs_id)["label"] == "benign"


def test_a_disagreement_waits_for_an_adjudicator_whose_label_is_final(two_labels, make_user, queue_items):
    (item,) = queue_items(1, audit_sample=True, decision="escalate")
    record = item.record
    record.audit_probability = 0.05
    record.save(update_fields=["audit_probability"])
    alice, bob = logged_in(make_user("alice")), logged_in(make_user("bob"))
    alice.post("/review/next/")
    _label(alice, item, "benign")
    bob.post("/review/next/")
    _label(bob, item, "anomalous", tag=["degraded"], tags="replay, Odd Shard")
    item.refresh_from_db()
    assert (item.stage, item.disagreement) == ("adjudication", True)
    assert label_for("default", item.pcs_id) is None  # a disputed item feeds no label to calibration

    # Listed with its labels; a reviewer without the permission can neither take nor label it.
    listing = alice.get("/review/disagreements/").content.decode()
    assert f"/review/item/{item.pk}/" in listing and '<strong id="adjudication-waiting">1</strong>' in listing
    assert "by alice" in listing and "by bob" in listing and "[degraded, replay, odd shard]" in listing
    dave = logged_in(make_user("dave"))
    assert dave.post("/review/next/", {"stream": "stage=adjudication"})["Location"] == "/review/?stage=adjudication"
    _label(dave, item, "benign")
    assert item.labels.count() == 2
    assert b"waits for an adjudicator" in dave.get(f"/review/item/{item.pk}/").content

    carol = logged_in(_adjudicator(make_user))
    assert carol.post("/review/next/")["Location"] == "/review/"  # not in the stream of first labels
    location = carol.post("/review/next/", {"stream": "stage=adjudication"})["Location"]
    assert location == f"/review/item/{item.pk}/?stage=adjudication"
    page = carol.get(location).content.decode()
    assert "Adjudication:" in page and "by alice" in page and "by bob" in page
    assert 'id="decision"' not in page and "Picked at random as an audit sample" in page  # still blind
    _label(carol, item, "anomalous", note="replayed events", stream="stage=adjudication")

    item.refresh_from_db()
    assert (item.stage, item.disagreement) == ("done", True)
    row = CalibrationLabel.objects.get(tenant="default", pcs_id=item.pcs_id)
    assert (row.label, row.provenance, row.inclusion_probability, row.origin) == (
        "anomalous", "audit", 0.05, "adjudication:carol",
    )  # fmt: skip
    standing = list(ReviewLabel.objects.filter(item=item, withdrawn_at__isnull=True).order_by("created_at"))
    assert [(r.reviewer.username, r.label, r.adjudication) for r in standing] == [
        ("alice", "benign", False), ("bob", "anomalous", False), ("carol", "anomalous", True),
    ]  # fmt: skip
    assert AuditEvent.objects.filter(item=item, action="label", detail="anomalous (adjudication)").exists()
    listing = carol.get("/review/disagreements/").content.decode()
    assert "settled" in listing and "(adjudication)" in listing


def test_undoing_an_adjudication_puts_the_item_back_and_withdraws_the_final_label(two_labels, make_user, queue_items):
    (item,) = queue_items(1)
    alice, bob = logged_in(make_user("alice")), logged_in(make_user("bob"))
    _label(alice, item, "benign")
    _label(bob, item, "anomalous")
    carol = logged_in(_adjudicator(make_user))
    _label(carol, item, "benign")
    assert label_for("default", item.pcs_id)["label"] == "benign"
    carol.post("/review/undo/")
    item.refresh_from_db()
    assert item.stage == "adjudication" and label_for("default", item.pcs_id) is None


def test_withdrawing_the_disagreeing_label_brings_the_agreed_label_back(two_labels, make_user, queue_items):
    (item,) = queue_items(1)
    alice, bob = logged_in(make_user("alice")), logged_in(make_user("bob"))
    _label(alice, item, "benign")
    _label(bob, item, "anomalous")
    assert label_for("default", item.pcs_id) is None
    bob.post("/review/undo/")
    item.refresh_from_db()
    assert item.stage == "second" and label_for("default", item.pcs_id)["label"] == "benign"
    assert CalibrationLabel.objects.get(pcs_id=item.pcs_id).origin == "review:alice"


def test_kappa_per_reviewer_pair_and_per_tenant(two_labels, make_user, queue_items):
    items = queue_items(2, tenant="acme")
    alice, bob = logged_in(make_user("alice")), logged_in(make_user("bob"))
    for item, (a, b) in zip(items, [("benign", "benign"), ("anomalous", "anomalous")], strict=True):
        _label(alice, item, a)
        _label(bob, item, b)
    stats = alice.get("/review/stats/").content.decode()
    pair_row = stats.split('id="reviewer-pairs"')[1].split("</tr>")[1]
    assert "alice · bob" in pair_row and "<td>2</td><td>2</td>" in pair_row and "1.00" in pair_row
    assert "1.00 (2 pairs)" in stats  # the tenant's kappa
