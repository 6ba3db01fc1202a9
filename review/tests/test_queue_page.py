"""The queue lists waiting items oldest first, with counts and filters."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client

from flk_site.testing import logged_in


def _page(make_user, query: str = "") -> str:
    from django.contrib.auth.models import User

    client = Client()
    user = User.objects.filter(username="alice").first() or make_user("alice")
    client.force_login(user)
    return client.get(f"/review/{query}").content.decode()


def _order(page: str, items) -> list[int]:
    return sorted((page.index(f"/review/item/{i.pk}/"), i.pk) for i in items if f"/review/item/{i.pk}/" in page)


def test_waiting_items_are_listed_oldest_first_with_counts(make_user, queue_items):
    new = queue_items(1, decision="reject", age=timedelta(minutes=5))
    old = queue_items(2, age=timedelta(hours=3))
    page = _page(make_user)
    assert [pk for _pos, pk in _order(page, old + new)] == [i.pk for i in old + new]
    assert '<strong id="queue-total">3</strong>' in page
    assert "2 escalate" in page and "1 reject" in page


def test_filters_narrow_the_list_and_say_how_many_match(make_user, queue_items):
    acme = queue_items(1, tenant="acme", decision="reject", age=timedelta(days=2))
    other = queue_items(1, tenant="other", age=timedelta(minutes=5))
    audit = queue_items(1, tenant="other", decision="accept", audit_sample=True, age=timedelta(minutes=5))
    page = _page(make_user, "?tenant=acme")
    assert f"/review/item/{acme[0].pk}/" in page and f"/review/item/{other[0].pk}/" not in page
    assert "<strong>1</strong> match the filters" in page
    page = _page(make_user, "?decision=audit")
    assert f"/review/item/{audit[0].pk}/" in page and f"/review/item/{other[0].pk}/" not in page
    page = _page(make_user, "?age=24h")
    assert f"/review/item/{acme[0].pk}/" in page and f"/review/item/{other[0].pk}/" not in page
    page = _page(make_user, "?reason=degraded")
    assert f"/review/item/{other[0].pk}/" in page
    page = _page(make_user, "?reason=coh_star_bounds")
    assert "Nothing waits for a label." in page


def test_unknown_filter_values_show_an_empty_list_not_an_error(make_user, queue_items):
    queue_items(1)
    client = logged_in(make_user("alice"))
    response = client.get("/review/?tenant=%00&decision=bogus&age=forever&regime=x")
    assert response.status_code == 200
    assert b"Nothing waits for a label." in response.content
