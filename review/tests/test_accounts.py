"""Reviewers' tenants are chosen from the existing ones; a refused user gets a page with a way out; admin search."""

from __future__ import annotations

from django.test import Client

from flk_site.testing import logged_in
from review.models import ReviewerTenant
from tenancy.models import Tenant


def _admin(make_user) -> Client:
    client = logged_in(make_user("root", reviewer=False, staff=True))
    from django.contrib.auth.models import User

    User.objects.filter(username="root").update(is_superuser=True)
    return client


def test_a_reviewers_tenants_are_chosen_among_existing_tenants_several_at_once(make_user, db):
    Tenant.objects.create(name="acme", sign_alg="none")
    Tenant.objects.create(name="beta", sign_alg="none")
    alice = make_user("alice")
    client = _admin(make_user)
    page = client.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    assert "Tenants this reviewer may review" in page
    assert '<option value="acme">acme</option>' in page and '<option value="beta">beta</option>' in page
    add = client.get("/admin/review/reviewertenant/add/").content.decode()
    assert '<select name="tenant"' in add
    response = client.post("/admin/review/reviewertenant/add/", {"user": alice.pk, "tenant": "acmee"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not ReviewerTenant.objects.exists()
    for name in ("acme", "beta"):
        client.post("/admin/review/reviewertenant/add/", {"user": alice.pk, "tenant": name})
    assert sorted(ReviewerTenant.objects.values_list("tenant", flat=True)) == ["acme", "beta"]


def test_a_signed_in_non_reviewer_gets_a_page_with_navigation_and_log_out(login, make_user):
    client = login(make_user("mallory", reviewer=False))
    response = client.get("/review/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "<h1>Not allowed</h1>" in page and "mallory" in page
    assert 'action="/accounts/logout/"' in page and "Log out" in page and 'href="/review/"' in page
    assert 'name="csrfmiddlewaretoken"' in page


def _rows(page: str) -> int:
    return page.split("<tbody>")[1].split("</tbody>")[0].count("<tr") if "<tbody>" in page else 0


def test_admin_finds_review_items_labels_and_events_by_a_pcs_id_prefix(make_user, queue_items):
    (item,) = queue_items(1)
    client = _admin(make_user)
    for url in ("/admin/review/reviewitem/", "/admin/review/auditevent/", "/admin/ingest/pcsrecord/"):
        if url.endswith("auditevent/"):
            from review.models import AuditEvent

            AuditEvent.objects.create(item=item, user=make_user("alice"), action="claim")
        page = client.get(f"{url}?q={item.pcs_id[:12]}").content.decode()
        assert _rows(page) == 1, url
        page = client.get(f"{url}?q={item.pcs_id[:12]}0000zz").content.decode()
        assert _rows(page) == 0, url
    listing = client.get("/admin/review/reviewitem/").content.decode()
    assert item.pcs_id not in listing.split("<tbody>")[1]  # the list shows a prefix, not 64 characters
