"""Next gives the oldest unclaimed item; two reviewers never hold the same one; claims expire."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from flk_site.testing import logged_in
from review.models import AuditEvent, ReviewItem


def test_next_gives_the_oldest_item_first(make_user, queue_items):
    oldest, _newer = queue_items(2)
    response = logged_in(make_user("alice")).post("/review/next/")
    assert response["Location"] == f"/review/item/{oldest.pk}/"


def test_next_on_an_empty_queue_returns_to_the_queue(make_user, db):
    response = logged_in(make_user("alice")).post("/review/next/", follow=True)
    assert response.redirect_chain == [("/review/", 302)]
    assert b"The queue is empty" in response.content


def test_two_reviewers_never_hold_the_same_item(make_user, queue_items):
    first, second = queue_items(2)
    alice, bob = logged_in(make_user("alice")), logged_in(make_user("bob"))
    assert alice.post("/review/next/")["Location"] == f"/review/item/{first.pk}/"
    assert bob.post("/review/next/")["Location"] == f"/review/item/{second.pk}/"
    carol = logged_in(make_user("carol"))
    assert carol.post("/review/next/")["Location"] == "/review/"


def test_a_reviewer_pressing_next_again_keeps_the_item_they_hold(make_user, queue_items):
    first, _ = queue_items(2)
    alice = logged_in(make_user("alice"))
    alice.post("/review/next/")
    assert alice.post("/review/next/")["Location"] == f"/review/item/{first.pk}/"


def test_an_expired_claim_goes_to_the_next_reviewer(make_user, queue_items, settings):
    settings.FLK_REVIEW_CLAIM_SECONDS = 600
    (item,) = queue_items(1)
    alice, bob = make_user("alice"), make_user("bob")
    logged_in(alice).post("/review/next/")
    assert logged_in(bob).post("/review/next/")["Location"] == "/review/"
    ReviewItem.objects.filter(pk=item.pk).update(claimed_at=timezone.now() - timedelta(seconds=601))
    assert logged_in(bob).post("/review/next/")["Location"] == f"/review/item/{item.pk}/"
    # Alice lost the claim: her label is refused and changes nothing.
    response = logged_in(alice).post(f"/review/item/{item.pk}/label/", {"label": "benign"}, follow=True)
    assert b"not claimed by you" in response.content
    assert not item.labels.exists()


def test_a_skipped_item_goes_back_to_the_queue_for_someone_else(make_user, queue_items):
    first, second = queue_items(2)
    alice, bob = logged_in(make_user("alice")), logged_in(make_user("bob"))
    alice.post("/review/next/")
    alice.post(f"/review/item/{first.pk}/skip/")
    assert alice.post("/review/next/")["Location"] == f"/review/item/{second.pk}/"
    assert bob.post("/review/next/")["Location"] == f"/review/item/{first.pk}/"
    assert AuditEvent.objects.filter(item=first, action="skip").count() == 1


def test_claims_are_recorded_in_the_audit_trail(make_user, queue_items):
    (item,) = queue_items(1)
    logged_in(make_user("alice")).post("/review/next/")
    assert list(AuditEvent.objects.filter(item=item).values_list("action", "user__username")) == [("claim", "alice")]
