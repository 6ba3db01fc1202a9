"""A reviewer's shift in a real browser (Debian's chromium under Playwright) against the live server."""

from __future__ import annotations

import re

import pytest

from calibration.services import label_for
from review.models import ReviewItem, ReviewLabel
from review.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def _log_in(new_context, live_server, username: str):
    context = new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/review/")
    assert "/accounts/login/" in page.url  # not signed in: sent to the login form
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()
    return context, page


def _item_id(page) -> int:
    match = re.search(r"/review/item/(\d+)/$", page.url)
    assert match, page.url
    return int(match.group(1))


def test_a_reviewer_labels_with_the_keyboard_undoes_and_labels_again(
    new_context, live_server, make_user, queue_items, screenshot, settings
):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    queue_items(3, shard_id="shard-browser")
    make_user("alice")
    _context, page = _log_in(new_context, live_server, "alice")
    assert page.url == f"{live_server.url}/review/"
    assert page.locator("#queue-total").inner_text() == "3"
    screenshot(page, "review-queue")

    with page.expect_navigation():
        page.keyboard.press("n")
    item_id = _item_id(page)
    assert page.locator("svg.scaling-plot line.fit-recomputed").count() == 1
    screenshot(page, "review-item")

    with page.expect_navigation():
        page.keyboard.press("b")
    # One keystroke per item: the label opens the next item of the queue, claimed.
    assert _item_id(page) != item_id
    assert ReviewItem.objects.get(pk=_item_id(page)).claimed_by.username == "alice"
    assert "benign. Press u to undo." in page.content()
    item = ReviewItem.objects.get(pk=item_id)
    assert item.stage == "done" and label_for(item.tenant, item.pcs_id)["label"] == "benign"

    with page.expect_navigation():
        page.keyboard.press("u")
    assert _item_id(page) == item_id
    assert label_for(item.tenant, item.pcs_id) is None

    with page.expect_navigation():
        page.keyboard.press("a")
    assert label_for(item.tenant, item.pcs_id)["label"] == "anomalous"
    standing = ReviewLabel.objects.filter(item_id=item_id, withdrawn_at__isnull=True)
    assert [(r.label, r.reviewer.username) for r in standing] == [("anomalous", "alice")]
    assert page.locator("#left-in-view").inner_text() == "2"


def test_a_second_reviewer_never_receives_the_first_ones_item(new_context, live_server, make_user, queue_items):
    queue_items(2)
    make_user("alice")
    make_user("bob")
    _ca, alice = _log_in(new_context, live_server, "alice")
    _cb, bob = _log_in(new_context, live_server, "bob")
    with alice.expect_navigation():
        alice.keyboard.press("n")
    with bob.expect_navigation():
        bob.keyboard.press("n")
    assert _item_id(alice) != _item_id(bob)
    with bob.expect_navigation():
        bob.keyboard.press("s")  # bob skips; alice still holds hers, so bob finds nothing
    with bob.expect_navigation():
        bob.keyboard.press("n")
    assert bob.url == f"{live_server.url}/review/"
    assert "The queue is empty" in bob.content()


def test_a_user_outside_the_reviewers_group_is_refused(new_context, live_server, make_user, queue_items):
    queue_items(1)
    make_user("mallory", reviewer=False)
    _context, page = _log_in(new_context, live_server, "mallory")
    response = page.goto(f"{live_server.url}/review/")
    assert response.status == 403
    assert not ReviewItem.objects.filter(claimed_by__isnull=False).exists()
