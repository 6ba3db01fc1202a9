"""Undo reaches back through a reviewer's last few labels, each button naming its item."""

from __future__ import annotations

from calibration.services import label_for
from flk_site.testing import logged_in
from review.models import ReviewItem


def _shift(make_user, queue_items, settings, n: int):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    items = queue_items(n, tenant="acme")
    client = logged_in(make_user("alice"))
    location = client.post("/review/next/")["Location"]
    for _ in items:
        item_id = int(location.split("?")[0].rstrip("/").rsplit("/", 1)[1])
        location = client.post(f"/review/item/{item_id}/label/", {"label": "benign"})["Location"]
    return client, items


def test_the_last_five_labels_each_have_an_undo_naming_their_item(make_user, queue_items, settings):
    client, items = _shift(make_user, queue_items, settings, 7)
    page = client.get("/review/").content.decode()
    undo = page.split('<div class="undo" id="undo">')[1].split("</div>")[0]
    assert undo.count('name="label_id"') == 5
    for item in items[-5:]:
        assert f"Undo benign on acme / <code>{item.pcs_id[:15]}" in undo
    for item in items[:2]:
        assert item.pcs_id[:15] not in undo
    assert undo.count('data-key="u"') == 1  # u undoes the latest


def test_undoing_an_older_label_reopens_that_item_and_keeps_the_others(make_user, queue_items, settings):
    client, items = _shift(make_user, queue_items, settings, 4)
    second = items[1]
    label_id = second.labels.get().pk
    response = client.post("/review/undo/", {"label_id": str(label_id)}, follow=True)
    assert response.redirect_chain[-1][0] == f"/review/item/{second.pk}/"
    assert f"Label of acme / {second.pcs_id[:12]} withdrawn" in response.content.decode()
    assert label_for("acme", second.pcs_id) is None
    assert all(label_for("acme", i.pcs_id)["label"] == "benign" for i in items if i != second)
    assert ReviewItem.objects.get(pk=second.pk).claimed_by.username == "alice"


def test_another_reviewers_label_cannot_be_undone_by_id(make_user, queue_items, settings):
    _client, items = _shift(make_user, queue_items, settings, 1)
    bob = logged_in(make_user("bob"))
    response = bob.post("/review/undo/", {"label_id": str(items[0].labels.get().pk)}, follow=True)
    assert b"nothing to undo" in response.content
    assert label_for("acme", items[0].pcs_id)["label"] == "benign"
    assert bob.post("/review/undo/", {"label_id": "x" * 40}).status_code == 302
