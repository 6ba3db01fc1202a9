"""An audit sample is labelled blind: its decision, score, p-value and failed checks show only once it is labelled."""

from __future__ import annotations

from django.test import Client

from flk_site.testing import logged_in

SCORE = 0.8765  # digits that appear nowhere else on the pages
P_VALUE = 0.0123


def _blind_audit_item(queue_items, **kwargs):
    (item,) = queue_items(1, decision="escalate", audit_sample=True, score=SCORE, **kwargs)
    record = item.record
    record.response["conformal"] = {"score": SCORE, "threshold": 0.5, "p_value": P_VALUE, "n": 200, "delta": 0.05}
    record.save(update_fields=["response"])
    return item


def _alice(make_user) -> Client:
    return logged_in(make_user("alice"))


def _shows_the_verdict(page: str) -> bool:
    return any(
        mark in page
        for mark in ('class="badge escalate"', "<code>degraded</code>", str(SCORE), str(P_VALUE), "threshold")
    )


def test_an_audit_items_page_hides_the_verdict_until_it_is_labelled(make_user, queue_items, settings):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    item = _blind_audit_item(queue_items)
    alice = _alice(make_user)
    assert alice.post("/review/next/")["Location"] == f"/review/item/{item.pk}/"

    page = alice.get(f"/review/item/{item.pk}/").content.decode()
    assert 'id="blind-audit"' in page and "audit sample (blind)" in page
    assert not _shows_the_verdict(page)
    assert 'id="score"' not in page and 'id="p-value"' not in page and 'id="decision"' not in page

    alice.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    page = alice.get(f"/review/item/{item.pk}/").content.decode()
    assert 'id="blind-audit"' not in page
    assert 'class="badge escalate"' in page and "<code>degraded</code>" in page
    assert f"score <strong>{SCORE}</strong>" in page
    assert f'<strong id="p-value">{P_VALUE}</strong>' in page


def test_an_audit_item_waiting_for_a_second_opinion_is_still_blind(make_user, queue_items, settings):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 1.0
    item = _blind_audit_item(queue_items)
    alice = _alice(make_user)
    alice.post("/review/next/")
    alice.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    bob = logged_in(make_user("bob"))
    assert bob.post("/review/next/")["Location"] == f"/review/item/{item.pk}/"

    assert not _shows_the_verdict(bob.get(f"/review/item/{item.pk}/").content.decode())
    bob.post(f"/review/item/{item.pk}/label/", {"label": "benign"})
    assert _shows_the_verdict(bob.get(f"/review/item/{item.pk}/").content.decode())


def test_the_queue_row_of_an_audit_item_shows_neither_decision_nor_score(make_user, queue_items):
    audit = _blind_audit_item(queue_items)
    (escalation,) = queue_items(1, decision="escalate", score=0.4321)
    page = _alice(make_user).get("/review/").content.decode()
    rows = {pk: page[page.index(f"/review/item/{pk}/") :].split("</tr>", 1)[0] for pk in (audit.pk, escalation.pk)}

    assert "badge escalate" not in rows[audit.pk] and str(SCORE) not in rows[audit.pk]
    assert "degraded" not in rows[audit.pk] and "blind" in rows[audit.pk]
    assert "badge escalate" in rows[escalation.pk] and "0.4321" in rows[escalation.pk]
    assert "1 escalate" in page and "1 audit sample (blind)" in page  # counts do not give the audit verdict away


def test_filters_on_the_verdict_never_match_a_waiting_audit_item(make_user, queue_items):
    audit = _blind_audit_item(queue_items)
    alice = _alice(make_user)
    for query in ("?decision=escalate", "?reason=degraded"):
        assert f"/review/item/{audit.pk}/" not in alice.get(f"/review/{query}").content.decode()
    assert f"/review/item/{audit.pk}/" in alice.get("/review/?decision=audit").content.decode()
