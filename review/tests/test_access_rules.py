"""Only reviewers (or staff) see review pages; others go to login or get 403; tenants can be restricted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from flk_site.testing import logged_in

PAGES = ["/review/", "/review/stats/"]


@pytest.mark.parametrize("url", PAGES)
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_an_anonymous_post_to_next_claims_nothing(client, queue_items):
    queue_items(1)
    response = client.post("/review/next/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    from review.models import ReviewItem

    assert not ReviewItem.objects.filter(claimed_by__isnull=False).exists()


@pytest.mark.parametrize("url", [*PAGES, "/review/audit/"])
def test_a_user_outside_the_reviewers_group_is_refused(login, make_user, url):
    client = login(make_user("mallory", reviewer=False))
    assert client.get(url).status_code == 403


def test_a_user_outside_the_group_cannot_claim(login, make_user, queue_items):
    queue_items(1)
    client = login(make_user("mallory", reviewer=False))
    assert client.post("/review/next/").status_code == 403
    from review.models import ReviewItem

    assert not ReviewItem.objects.filter(claimed_by__isnull=False).exists()


def test_staff_see_the_queue_without_being_in_the_group(login, make_user, queue_items):
    queue_items(1)
    client = login(make_user("root", reviewer=False, staff=True))
    assert client.get("/review/").status_code == 200


def test_the_login_form_takes_username_and_password(client, make_user):
    make_user("alice")
    from review.tests.conftest import PASSWORD

    page = client.get("/accounts/login/")
    assert b'name="username"' in page.content and b'name="password"' in page.content
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/review/"


def test_a_post_without_the_csrf_token_is_refused(make_user, queue_items):
    queue_items(1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("alice"))
    assert client.post("/review/next/").status_code == 403
    from review.models import ReviewItem

    assert not ReviewItem.objects.filter(claimed_by__isnull=False).exists()


def test_every_review_form_carries_a_csrf_token(login, make_user, queue_items):
    queue_items(1)
    client = login(make_user("alice"))
    item_page = client.get(client.post("/review/next/")["Location"])
    html = item_page.content.decode()
    assert html.count("<form") == html.count('name="csrfmiddlewaretoken"') > 0


def test_a_reviewer_restricted_to_a_tenant_sees_and_claims_only_its_items(login, make_user, queue_items):
    other = queue_items(1, tenant="other")[0]
    mine = queue_items(1, tenant="acme", age=timedelta(minutes=1))[0]
    client = login(make_user("alice", tenants=["acme"]))
    page = client.get("/review/").content.decode()
    assert mine.pcs_id[:13] in page and other.pcs_id[:13] not in page
    assert client.post("/review/next/")["Location"] == f"/review/item/{mine.pk}/"
    assert client.get(f"/review/item/{other.pk}/").status_code == 404


def test_a_restricted_reviewer_cannot_label_another_tenants_item(login, make_user, queue_items):
    (item,) = queue_items(1, tenant="other")
    bob = logged_in(make_user("bob"))
    bob.post("/review/next/")
    client = login(make_user("alice", tenants=["acme"]))
    assert client.post(f"/review/item/{item.pk}/label/", {"label": "benign"}).status_code == 404
    assert not item.labels.exists()
