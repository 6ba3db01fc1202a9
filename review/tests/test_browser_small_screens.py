"""On a 390 px phone no review page scrolls sideways; the admin's review lists fit 1280 px; a 403 has a way out."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from review.models import AuditEvent, ReviewLabel
from review.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

WIDE_SCROLL = "document.documentElement.scrollWidth - window.innerWidth"
RESULTS_SCROLL = "(b => b.scrollWidth - b.clientWidth)(document.querySelector('.results'))"


@pytest.fixture
def phone(chromium):
    context = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                   has_touch=True)  # fmt: skip
    yield context
    context.close()


def _log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next=/review/")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click('button[type="submit"]')


def test_every_review_page_fits_a_390_px_phone(phone, live_server, make_user, queue_items, screenshot, settings):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    items = queue_items(3, tenant="a-tenant-with-a-rather-long-name", shard_id="shard-with-a-long-name-0123456789")
    queue_items(2, audit_sample=True, decision="accept")
    root = make_user("root", staff=True)
    User.objects.filter(pk=root.pk).update(is_superuser=True)
    AuditEvent.objects.create(item=items[0], user=root, action="claim", detail="first")
    page = phone.new_page()
    _log_in(page, live_server, "root")
    with page.expect_navigation():
        page.keyboard.press("n")  # hold an item: the labelling form shows
    with page.expect_navigation():
        page.keyboard.press("b")  # one label: the undo button with its item's name shows
    pages = {
        "queue": "/review/?tenant=a-tenant-with-a-rather-long-name&reason=degraded",
        "item": page.url.replace(live_server.url, ""),
        "stats": "/review/stats/",
        "disagreements": "/review/disagreements/",
        "audit": "/review/audit/",
        "labels": "/review/labels/",
        "calibration": "/review/calibration/",
    }
    for name, path in pages.items():
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, name
        assert page.evaluate(WIDE_SCROLL) <= 0, f"{name} scrolls sideways on a 390 px screen"
        screenshot(page, f"review-390px-{name}")
    page.goto(f"{live_server.url}{pages['item']}")
    assert page.locator('button[data-key="b"]').is_visible() and page.locator("svg.scaling-plot").is_visible()
    box = page.locator("svg.scaling-plot").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390


def test_a_refused_user_on_a_phone_sees_why_and_can_log_out(phone, live_server, make_user, screenshot):
    make_user("mallory", reviewer=False)
    page = phone.new_page()
    _log_in(page, live_server, "mallory")
    assert page.locator("h1").inner_text() == "Not allowed"
    assert "mallory" in page.locator("main").inner_text()
    assert page.evaluate(WIDE_SCROLL) <= 0
    screenshot(page, "review-403-390px")
    with page.expect_navigation():
        page.click("header button:has-text('Log out')")
    assert "Logged out" in page.content() or "/accounts/login/" in page.url or "logout" in page.url
    response = page.goto(f"{live_server.url}/review/")
    assert "/accounts/login/" in page.url and response.status == 200


def test_the_admins_review_lists_fit_1280_px(new_context, live_server, make_user, queue_items, screenshot):
    items = queue_items(3, shard_id="shard-with-a-long-name-0123456789")
    root = make_user("root", staff=True)
    User.objects.filter(pk=root.pk).update(is_superuser=True)
    for item in items:
        AuditEvent.objects.create(item=item, user=root, action="expire", detail="expired in the admin by root: " * 4)
        ReviewLabel.objects.create(item=item, reviewer=root, label="benign", note="looks fine " * 10)
    page = new_context().new_page()
    _log_in(page, live_server, "root")
    for name in ("reviewitem", "auditevent", "reviewlabel"):
        page.goto(f"{live_server.url}/admin/review/{name}/")
        assert page.evaluate(WIDE_SCROLL) <= 0, f"the admin list of {name} scrolls sideways at 1280 px"
        # ... nor does its table hide columns inside the admin's scrolling results box.
        assert page.evaluate(RESULTS_SCROLL) <= 0, f"the admin list of {name} hides columns at 1280 px"
        screenshot(page, f"admin-1280px-{name}")
    page.goto(f"{live_server.url}/admin/calibration/calibrationlabel/")
    assert page.evaluate(WIDE_SCROLL) <= 0
