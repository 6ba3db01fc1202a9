"""Every claim, label, undo and skip is recorded, visible to staff, and never editable."""

from __future__ import annotations

import pytest

from flk_site.testing import logged_in
from review.models import AuditEvent


def test_staff_see_every_action_on_the_audit_page(make_user, queue_items, settings):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    first, second = queue_items(2)
    alice = logged_in(make_user("alice"))
    alice.post("/review/next/")
    alice.post(f"/review/item/{first.pk}/skip/")
    alice.post("/review/next/")
    alice.post(f"/review/item/{second.pk}/label/", {"label": "benign"})
    alice.post("/review/undo/")
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["claim", "skip", "claim", "label", "undo"]
    staff = logged_in(make_user("root", reviewer=False, staff=True))
    page = staff.get("/review/audit/").content.decode()
    for action in ("claim", "skip", "label", "undo"):
        assert f"<td>{action}</td>" in page


def test_a_reviewer_who_is_not_staff_cannot_see_the_audit_trail(make_user, db):
    client = logged_in(make_user("alice"))
    assert client.get("/review/audit/").status_code == 403


def test_audit_events_cannot_be_edited_or_deleted(make_user, queue_items):
    queue_items(1)
    client = logged_in(make_user("alice"))
    client.post("/review/next/")
    event = AuditEvent.objects.get()
    event.detail = "rewritten"
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()
    assert AuditEvent.objects.get().detail != "rewritten"


def test_the_admin_offers_no_way_to_change_audit_events(make_user, queue_items):
    queue_items(1)
    staff = logged_in(make_user("root", reviewer=False, staff=True))
    staff.post("/review/next/")
    event = AuditEvent.objects.get()
    root = make_user("superroot", reviewer=False, staff=True)
    root.is_superuser = True
    root.save()
    staff.force_login(root)
    page = staff.get(f"/admin/review/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert staff.post(f"/admin/review/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
