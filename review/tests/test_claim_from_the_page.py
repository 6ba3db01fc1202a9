"""Any waiting item can be claimed and labelled from its page unless someone else holds it; one claim wins."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from calibration.services import label_for
from flk_site.testing import logged_in
from review.models import AuditEvent, ReviewItem, ReviewLabel

pytestmark = pytest.mark.usefixtures("one_label_each")


def test_an_unclaimed_item_opened_from_the_list_can_be_labelled_at_once(make_user, queue_items):
    first, _second, third = queue_items(3, tenant="acme")
    alice = logged_in(make_user("alice"))
    page = alice.get(f"/review/item/{third.pk}/?tenant=acme").content.decode()
    assert "Not claimed: take items with Next." not in page
    assert 'data-key="b"' in page and 'data-key="a"' in page and "Nobody holds this item" in page
    response = alice.post(f"/review/item/{third.pk}/label/", {"label": "anomalous", "stream": "tenant=acme"})
    assert label_for("acme", third.pcs_id)["label"] == "anomalous"
    # ... and the stream goes on with its first item.
    assert response["Location"] == f"/review/item/{first.pk}/?tenant=acme"
    assert ReviewLabel.objects.get(item=third).seconds is None  # never held before the label: no time measured


def test_claiming_from_the_page_releases_the_item_held_before(make_user, queue_items):
    first, second = queue_items(2)
    alice = logged_in(make_user("alice"))
    alice.post("/review/next/")
    assert alice.post(f"/review/item/{second.pk}/claim/")["Location"] == f"/review/item/{second.pk}/"
    assert ReviewItem.objects.get(pk=second.pk).claimed_by.username == "alice"
    assert ReviewItem.objects.get(pk=first.pk).claimed_by is None
    assert AuditEvent.objects.filter(item=first, action="release").exists()


def test_an_item_someone_else_holds_cannot_be_taken_or_labelled_from_its_page(make_user, queue_items):
    (item,) = queue_items(1)
    logged_in(make_user("bob")).post("/review/next/")
    alice = logged_in(make_user("alice"))
    page = alice.get(f"/review/item/{item.pk}/").content.decode()
    assert "Claimed by another reviewer until" in page and 'data-key="b"' not in page
    until = ReviewItem.objects.get(pk=item.pk).claimed_at + timedelta(seconds=600)
    assert f"until {until:%H:%M} UTC" in page  # when the claim lapses, not when it was taken
    response = alice.post(f"/review/item/{item.pk}/claim/", follow=True)
    assert b"another reviewer holds it" in response.content
    alice.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    assert not item.labels.exists() and ReviewItem.objects.get(pk=item.pk).claimed_by.username == "bob"
    # Once bob's claim lapses, alice may take it.
    ReviewItem.objects.filter(pk=item.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    alice.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    assert item.labels.get().reviewer.username == "alice"


def test_the_time_from_claim_to_label_is_kept(make_user, queue_items):
    (item,) = queue_items(1)
    alice = logged_in(make_user("alice"))
    alice.post("/review/next/")
    ReviewItem.objects.filter(pk=item.pk).update(claimed_at=timezone.now() - timedelta(seconds=42))
    alice.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    assert 42 <= ReviewLabel.objects.get(item=item).seconds < 60
    stats = alice.get("/review/stats/").content.decode()
    assert "<td>alice</td><td>1</td><td>4" in stats  # median time per item, 4x.x s


@pytest.mark.django_db(transaction=True)
def test_eight_reviewers_claiming_one_item_from_its_page_at_once_leave_one_holder(make_user, queue_items):
    (item,) = queue_items(1)
    users = [make_user(f"r{i}") for i in range(8)]
    start = threading.Barrier(len(users))
    outcomes: dict[str, int] = {}
    errors: list[BaseException] = []

    def work(user) -> None:
        try:
            client = logged_in(user)
            start.wait()
            response = client.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
            outcomes[user.username] = response.status_code
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and set(outcomes.values()) == {302}
    labels = list(ReviewLabel.objects.filter(item=item))
    assert len(labels) == 1  # exactly one of the eight took and labelled it; the others were told why not
    assert AuditEvent.objects.filter(item=item, action="label").count() == 1
    assert ReviewItem.objects.get(pk=item.pk).stage == "done"


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_from_the_page_and_next_never_share_an_item(make_user, queue_items):
    items = queue_items(6)
    users = [make_user(f"r{i}") for i in range(6)]
    start = threading.Barrier(len(users))
    errors: list[BaseException] = []

    def work(i, user) -> None:
        try:
            client = logged_in(user)
            start.wait()
            if i % 2:
                client.post(f"/review/item/{items[0].pk}/claim/")
            else:
                client.post("/review/next/")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, u)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    holders = list(ReviewItem.objects.filter(claimed_by__isnull=False).values_list("claimed_by", flat=True))
    assert len(holders) == len(set(holders))  # nobody holds two items
    assert ReviewItem.objects.filter(pk=items[0].pk, claimed_by__isnull=False).count() == 1
    claims = AuditEvent.objects.filter(action="claim").values_list("item_id", flat=True)
    releases = AuditEvent.objects.filter(action="release").count()
    assert len(claims) - releases == len(holders)
