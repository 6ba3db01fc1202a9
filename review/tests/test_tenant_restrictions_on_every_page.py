"""A reviewer restricted to some tenants sees nothing of the others on any review page: queue, item, stats,
audit trail, calibration pages."""

from __future__ import annotations

import pytest

from flk_site.testing import logged_in
from review.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_tenants(make_user, queue_items):
    """An item of "acme" and one of "other", each claimed and labelled once by an unrestricted reviewer."""
    mine, theirs = queue_items(1, tenant="acme")[0], queue_items(1, tenant="other")[0]
    bob = logged_in(make_user("bob", staff=True))
    for item in (mine, theirs):
        bob.post("/review/next/")
        bob.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    assert set(AuditEvent.objects.values_list("tenant", flat=True)) == {"acme", "other"}
    return mine, theirs


def test_the_audit_trail_shows_only_the_allowed_tenants_events(login, make_user, two_tenants):
    mine, theirs = two_tenants
    client = login(make_user("rita", staff=True, tenants=["acme"]))
    page = client.get("/review/audit/").content.decode()
    assert mine.pcs_id[:12] in page and theirs.pcs_id[:12] not in page
    assert theirs.pcs_id[:12] not in client.get(f"/review/audit/?item={theirs.pk}").content.decode()
    # An unrestricted staff member sees both.
    everyone = login(make_user("una", staff=True)).get("/review/audit/").content.decode()
    assert mine.pcs_id[:12] in everyone and theirs.pcs_id[:12] in everyone


def test_no_review_page_shows_another_tenant(login, make_user, two_tenants):
    _mine, theirs = two_tenants
    client = login(make_user("rita", staff=True, tenants=["acme"]))
    for url in ("/review/", "/review/stats/", "/review/audit/", "/review/calibration/"):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert theirs.pcs_id[:12] not in page and ">other<" not in page, url
    assert client.get(f"/review/item/{theirs.pk}/").status_code == 404
    assert client.get("/review/calibration/other/").status_code == 404
