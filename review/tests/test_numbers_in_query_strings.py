"""Page numbers, label ids and item ids a client types are read as ASCII digits: anything else is ignored, never a 500."""

from __future__ import annotations

import pytest

from flk_site.query import ascii_int
from flk_site.testing import logged_in
from review.models import AuditEvent, ReviewLabel

# "²" and "١" (Arabic-Indic one) pass str.isdigit() and int() refuses the first; a 40-digit id overflows bigint.
ODD_NUMBERS = ["²", "١", "1²", "９", "-1", "0", "", "9" * 40]


@pytest.mark.parametrize("raw", ODD_NUMBERS)
def test_each_paged_page_answers_its_first_page(make_user, queue_items, raw):
    items = queue_items(2)
    AuditEvent.objects.create(item=items[0], user=make_user("bob"), action="claim")
    client = logged_in(make_user("root", reviewer=True, staff=True))
    for path in ("/review/", "/review/disagreements/", "/review/audit/"):
        response = client.get(path, {"page": raw})
        assert response.status_code == 200, (path, raw)
    assert f"/review/item/{items[0].pk}/" in client.get("/review/", {"page": raw}).content.decode()


@pytest.mark.parametrize("raw", ["²", "1²", "9" * 40])
def test_an_item_filter_that_is_not_an_id_matches_nothing_by_id(make_user, queue_items, raw):
    items = queue_items(1)
    AuditEvent.objects.create(item=items[0], user=make_user("bob"), action="claim")
    client = logged_in(make_user("root", reviewer=False, staff=True))
    response = client.get("/review/audit/", {"item": raw})
    assert response.status_code == 200
    assert '<strong id="audit-count">0</strong>' in response.content.decode()


@pytest.mark.parametrize("raw", ["²", "9" * 40])
def test_undo_with_an_odd_label_id_withdraws_the_latest_label_as_without_one(make_user, queue_items, settings, raw):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    items = queue_items(2, tenant="acme")
    client = logged_in(make_user("alice"))
    location = client.post("/review/next/")["Location"]
    labelled = []
    for _ in items:
        item_id = int(location.split("?")[0].rstrip("/").rsplit("/", 1)[1])
        labelled.append(item_id)
        location = client.post(f"/review/item/{item_id}/label/", {"label": "benign"})["Location"]
    response = client.post("/review/undo/", {"label_id": raw}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == f"/review/item/{labelled[-1]}/"
    assert ReviewLabel.objects.filter(item_id=labelled[-1], withdrawn_at__isnull=True).count() == 0
    assert ReviewLabel.objects.filter(item_id=labelled[0], withdrawn_at__isnull=True).count() == 1


def test_ascii_int_reads_only_ascii_digits_within_the_bound():
    assert ascii_int("42") == 42
    assert ascii_int("007") == 7
    assert [ascii_int(raw) for raw in ODD_NUMBERS if raw not in ("0",)] == [None] * (len(ODD_NUMBERS) - 1)
    assert ascii_int("0") == 0
    assert ascii_int("1234567", max_digits=6) is None
