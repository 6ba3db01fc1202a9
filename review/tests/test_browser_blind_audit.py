"""In a real browser (Debian's chromium under Playwright), an audit sample shows its verdict only once labelled."""

from __future__ import annotations

import re

import pytest

from review.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

SCORE = "0.8765"


def test_a_reviewer_sees_an_audit_samples_verdict_only_after_labelling_it(
    new_context, live_server, make_user, queue_items, screenshot, settings
):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    (item,) = queue_items(1, decision="escalate", audit_sample=True, score=float(SCORE))
    make_user("alice")
    page = new_context().new_page()
    page.goto(f"{live_server.url}/accounts/login/?next=/review/")
    page.fill('input[name="username"]', "alice")
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click('button[type="submit"]')

    row = page.locator("table.queue tbody tr").first.inner_text()
    assert "audit" in row and "blind" in row and "escalate" not in row and SCORE not in row
    with page.expect_navigation():
        page.keyboard.press("n")
    assert re.search(rf"/review/item/{item.pk}/$", page.url)
    text = page.locator("main").inner_text()
    assert "Picked at random as an audit sample" in text
    assert "escalate" not in text and SCORE not in text and "degraded\n" not in text
    assert page.locator("#score, #decision, ul.reasons").count() == 0
    screenshot(page, "review-blind-audit-item")

    with page.expect_navigation():
        page.keyboard.press("b")
    page.goto(f"{live_server.url}/review/item/{item.pk}/")
    assert page.locator("#decision").inner_text() == "escalate"
    assert SCORE in page.locator("#score").inner_text()
    assert page.locator("ul.reasons").inner_text().startswith("degraded")
