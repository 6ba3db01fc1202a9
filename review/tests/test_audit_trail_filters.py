"""The audit trail is filtered (reviewer, tenant, item, action, time), paged and exported as CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from flk_site.testing import logged_in
from review.models import AuditEvent


def _staff(make_user) -> Client:
    return logged_in(make_user("root", reviewer=False, staff=True))


def _events(make_user, queue_items):
    acme = queue_items(2, tenant="acme")
    other = queue_items(1, tenant="other")
    alice, bob = make_user("alice"), make_user("bob")
    for item in acme:
        AuditEvent.objects.create(item=item, user=alice, action="claim")
    AuditEvent.objects.create(item=acme[0], user=alice, action="skip")
    AuditEvent.objects.create(item=other[0], user=bob, action="claim")
    return acme, other


def _rows(page: str) -> int:
    return page.split('<table id="audit-events">')[1].split("</table>")[0].count("<tr>") - 1


def test_each_filter_narrows_the_trail(make_user, queue_items):
    acme, _other = _events(make_user, queue_items)
    staff = _staff(make_user)
    cases = {
        "reviewer=alice": 3,
        "reviewer=bob": 1,
        "tenant=other": 1,
        f"item={acme[0].pcs_id[:10]}": 2,
        f"item={acme[0].pk}": 2,
        "action=skip": 1,
        "action=claim&tenant=acme": 2,
        f"since={timezone.now().date().isoformat()}": 4,
        f"until={(timezone.now() - timedelta(days=2)).date().isoformat()}": 0,
        "action=bogus": 0,
        "since=yesterday": 0,
        "item=not-hex": 0,
    }
    for query, expected in cases.items():
        response = staff.get(f"/review/audit/?{query}")
        assert response.status_code == 200, query
        page = response.content.decode()
        assert f'<strong id="audit-count">{expected}</strong>' in page, query
        assert _rows(page) == (expected or 1), query  # "Nothing recorded yet." fills an empty table


def test_a_pcs_id_prefix_of_decimal_digits_finds_its_pcs_and_a_short_number_is_an_item_id(make_user, queue_items):
    # One pcs_id in a hundred starts with ten decimal digits; its prefix must not be taken for an item id only.
    (item,) = queue_items(1)
    alice = make_user("alice")
    AuditEvent.objects.create(item=item, user=alice, action="claim")
    digits = f"{item.pk + 1}{'6823640574' * 7}"[:64]  # not this item's id, and starts like no other pcs_id
    AuditEvent.objects.create(item=None, user=alice, action="expire", tenant="acme", pcs_id=digits)
    staff = _staff(make_user)
    for query, expected in ((digits[:10], 1), (digits[:6], 1), (str(item.pk), 1), (digits[:64], 1)):
        page = staff.get("/review/audit/", {"item": query}).content.decode()
        assert f'<strong id="audit-count">{expected}</strong>' in page, query
    found = staff.get("/review/audit/", {"item": digits[:10]}).content.decode()
    assert "expire" in found.split('<table id="audit-events">')[1]


def test_the_trail_is_paged(make_user, queue_items):
    (item,) = queue_items(1)
    alice = make_user("alice")
    AuditEvent.objects.bulk_create([AuditEvent(item=item, user=alice, action="claim", tenant="default",
                                               pcs_id=item.pcs_id) for _ in range(130)])  # fmt: skip
    staff = _staff(make_user)
    first = staff.get("/review/audit/?reviewer=alice").content.decode()
    assert _rows(first) == 100 and "Page 1 of 2" in first and "reviewer=alice&amp;page=2" in first
    second = staff.get("/review/audit/?reviewer=alice&page=2").content.decode()
    assert _rows(second) == 30


def test_the_filtered_trail_exports_as_csv(make_user, queue_items):
    acme, _ = _events(make_user, queue_items)
    response = _staff(make_user).get("/review/audit/?tenant=acme&format=csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 3 and {r["tenant"] for r in rows} == {"acme"}
    assert {r["action"] for r in rows} == {"claim", "skip"} and rows[0]["user"] == "alice"
    assert {r["pcs_id"] for r in rows} == {i.pcs_id for i in acme}
