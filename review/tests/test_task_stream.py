"""Filters make a stream: Next takes from it, a label opens its next item, the list is sorted, paged and counted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from flk_site.testing import logged_in
from review.models import ReviewItem, SavedView

pytestmark = pytest.mark.usefixtures("one_label_each")


def _id(location: str) -> int:
    return int(location.split("?")[0].rstrip("/").rsplit("/", 1)[1])


def test_next_in_a_tenants_view_claims_that_tenants_item(make_user, queue_items):
    queue_items(2, tenant="default", age=timedelta(hours=5))  # older: first in the whole queue
    (acme,) = queue_items(1, tenant="acme")
    alice = logged_in(make_user("alice"))
    location = alice.post("/review/next/", {"stream": "tenant=acme"})["Location"]
    assert location == f"/review/item/{acme.pk}/?tenant=acme"
    assert ReviewItem.objects.get(pk=acme.pk).claimed_by.username == "alice"
    assert not ReviewItem.objects.filter(tenant="default", claimed_by__isnull=False).exists()
    # The queue page's Next button carries the view it is on.
    page = alice.get("/review/?tenant=acme").content.decode()
    assert '<input type="hidden" name="stream" value="tenant=acme">' in page


def test_a_label_opens_the_next_item_of_the_same_stream_until_it_is_empty(make_user, queue_items):
    acme = queue_items(3, tenant="acme", age=timedelta(hours=2))
    queue_items(2, tenant="default", age=timedelta(hours=5))
    alice = logged_in(make_user("alice"))
    location = alice.post("/review/next/", {"stream": "tenant=acme"})["Location"]
    seen = []
    while "/item/" in location:
        seen.append(_id(location))
        location = alice.post(f"/review/item/{_id(location)}/label/", {"label": "benign", "stream": "tenant=acme"})[
            "Location"
        ]
    assert seen == [i.pk for i in acme]
    assert location == "/review/?tenant=acme"
    page = alice.get(location).content.decode()
    assert "Nothing left in this view." in page
    assert '<strong id="session-labelled">3</strong>' in page and '<strong id="left-in-view">0</strong>' in page
    assert ReviewItem.objects.filter(tenant="default", stage="first", claimed_by__isnull=True).count() == 2


def test_every_filter_scopes_next(make_user, queue_items):
    old_reject = queue_items(1, decision="reject", age=timedelta(days=2), score=0.9)[0]
    audit = queue_items(1, audit_sample=True, decision="accept", score=0.99)[0]
    low = queue_items(1, score=0.1)[0]
    high = queue_items(1, score=0.8)[0]
    alice = make_user("alice")
    cases = {
        "decision=reject": old_reject,
        "age=24h": old_reject,
        "kind=audit": audit,
        "decision=audit": audit,
        "kind=escalation&sort=-score": old_reject,
        "sort=score": low,
        "reason=degraded&sort=-age": high,
        f"q={audit.pcs_id[:10]}": audit,
        f"q={high.pcs_id[:6].upper()}": high,
    }
    for query, expected in cases.items():
        ReviewItem.objects.update(claimed_by=None, claimed_at=None)
        location = logged_in(alice).post("/review/next/", {"stream": query})["Location"]
        assert _id(location) == expected.pk, query


def test_sorting_by_score_never_orders_blind_audit_samples_by_their_hidden_score(make_user, queue_items):
    low = queue_items(1, score=0.1)[0]
    high = queue_items(1, score=0.8)[0]
    audit = queue_items(1, audit_sample=True, score=0.99)[0]
    page = logged_in(make_user("alice")).get("/review/?sort=-score").content.decode()
    positions = [page.index(f"/review/item/{i.pk}/") for i in (high, low, audit)]
    assert positions == sorted(positions)  # the audit sample (score unknown to the reviewer) comes last
    page = logged_in(make_user("bob")).get("/review/?sort=score").content.decode()
    positions = [page.index(f"/review/item/{i.pk}/") for i in (low, high, audit)]
    assert positions == sorted(positions)


def test_the_list_is_paged_and_its_counts_follow_the_filters(make_user, queue_items):
    queue_items(60, tenant="acme")
    queue_items(3, tenant="default", decision="reject")
    alice = logged_in(make_user("alice"))
    page = alice.get("/review/?tenant=acme").content.decode()
    assert '<strong id="queue-total">63</strong>' in page
    assert (
        "<strong>60</strong> match the filters" in page
        and "· 60 escalate" in page
        and "reject" not in page.split("match the filters")[1].split("</p>")[0]
    )
    assert page.count('<a href="/review/item/') == 50 and "Page 1 of 2" in page
    second = alice.get("/review/?tenant=acme&page=2").content.decode()
    assert second.count('<a href="/review/item/') == 10 and "Page 2 of 2" in second
    assert alice.get("/review/?tenant=acme&page=99").status_code == 200
    assert alice.get("/review/?page=abc").status_code == 200


def test_the_state_column_no_longer_says_claimed_once_a_claim_lapsed(make_user, queue_items, settings):
    (item,) = queue_items(1)
    logged_in(make_user("bob")).post("/review/next/")
    alice = logged_in(make_user("alice"))
    assert "claimed" in alice.get("/review/").content.decode().split('class="state"')[1].split("</td>")[0]
    ReviewItem.objects.filter(pk=item.pk).update(claimed_at=timezone.now() - timedelta(seconds=3600))
    assert "claimed" not in alice.get("/review/").content.decode().split('class="state"')[1].split("</td>")[0]


def test_a_view_can_be_saved_and_opened_by_its_link(make_user, queue_items):
    queue_items(1, tenant="acme")
    alice = logged_in(make_user("alice"))
    response = alice.post("/review/views/", {"name": "acme degraded", "stream": "tenant=acme&reason=degraded"})
    assert response["Location"] == "/review/?tenant=acme&reason=degraded"
    assert SavedView.objects.get(owner__username="alice").query == "tenant=acme&reason=degraded"
    page = alice.get("/review/").content.decode()
    assert '<a class="saved-view" href="/review/?tenant=acme&amp;reason=degraded">acme degraded</a>' in page


def test_odd_stream_values_select_nothing_and_never_fail(make_user, queue_items):
    queue_items(2)
    alice = logged_in(make_user("alice"))
    for query in ("reason=d_hat_mismatch", "q=zz", "kind=other", "stage=nope", "age=forever", "sort=bogus&tenant=%00"):
        response = alice.get(f"/review/?{query}")
        assert response.status_code == 200, query
        if not query.startswith("sort"):
            assert "Nothing waits for a label." in response.content.decode(), query
        assert alice.post("/review/next/", {"stream": query}).status_code == 302
