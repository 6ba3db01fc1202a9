"""A share of labelled items goes blind to a different reviewer; disagreements are flagged; kappa is shown."""

from __future__ import annotations

import pytest
from django.test import Client

from flk_site.testing import logged_in
from review.models import ReviewItem


@pytest.fixture
def always_second(settings):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 1.0


def _label_next(client: Client, label: str) -> int:
    location = client.post("/review/next/")["Location"]
    item_id = int(location.rstrip("/").rsplit("/", 1)[1])
    client.post(f"/review/item/{item_id}/label/", {"label": label, "note": "first reviewer's note"})
    return item_id


def test_the_first_reviewer_never_gets_their_own_item_for_the_second_opinion(always_second, make_user, queue_items):
    queue_items(1)
    alice = logged_in(make_user("alice"))
    _label_next(alice, "benign")
    assert alice.post("/review/next/")["Location"] == "/review/"


def test_the_second_reviewer_sees_the_item_blind(always_second, make_user, queue_items):
    queue_items(1)
    item_id = _label_next(logged_in(make_user("alice")), "benign")
    bob = logged_in(make_user("bob"))
    assert bob.post("/review/next/")["Location"] == f"/review/item/{item_id}/"
    page = bob.get(f"/review/item/{item_id}/").content.decode()
    assert "second opinion (blind)" in page
    assert "first reviewer&#x27;s note" not in page and "alice" not in page


def test_a_disagreement_is_flagged_and_lowers_kappa(always_second, make_user, queue_items):
    queue_items(2)
    alice, bob = logged_in(make_user("alice")), logged_in(make_user("bob"))
    agreed = _label_next(alice, "benign")
    disputed = _label_next(alice, "benign")
    assert _label_next(bob, "benign") == agreed
    assert _label_next(bob, "anomalous") == disputed
    assert ReviewItem.objects.get(pk=agreed).disagreement is False
    assert ReviewItem.objects.get(pk=disputed).disagreement is True
    # Disagreeing labels do not settle the item: it waits for an adjudicator (review/tests/test_adjudication.py).
    assert ReviewItem.objects.get(pk=disputed).stage == "adjudication"
    assert ReviewItem.objects.get(pk=agreed).stage == "done"
    stats = bob.get("/review/stats/").content.decode()
    # Pairs (b,b) and (b,a): p_o = 0.5, p_e = 0.5, kappa 0.
    assert "0.00 (2 pairs)" in stats


def test_the_second_opinion_does_not_replace_the_calibration_label(always_second, make_user, queue_items):
    from calibration.services import label_for

    (item,) = queue_items(1)
    _label_next(logged_in(make_user("alice")), "benign")
    assert label_for("default", item.pcs_id)["label"] == "benign"
    _label_next(logged_in(make_user("bob")), "benign")
    assert label_for("default", item.pcs_id)["label"] == "benign"
    assert (
        label_for("default", item.pcs_id)["labelled_at"] == item.labels.get(second_opinion=False).created_at.isoformat()
    )


def test_a_disagreeing_second_opinion_takes_the_label_out_of_calibration(always_second, make_user, queue_items):
    from calibration.services import label_for

    (item,) = queue_items(1)
    _label_next(logged_in(make_user("alice")), "benign")
    _label_next(logged_in(make_user("bob")), "anomalous")
    # Only an item's final label feeds the calibration set; a disputed item has none until it is adjudicated.
    assert label_for("default", item.pcs_id) is None


def test_with_rate_zero_no_item_is_shown_twice(settings, make_user, queue_items):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    queue_items(1)
    _label_next(logged_in(make_user("alice")), "benign")
    assert logged_in(make_user("bob")).post("/review/next/")["Location"] == "/review/"
