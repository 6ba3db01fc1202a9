"""A reviewer works a filtered stream in a real browser (Debian's chromium under Playwright): one key per item."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission

from calibration.services import label_for
from review.models import ReviewItem, ReviewLabel
from review.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def _log_in(page, live_server, username: str, then: str = "/review/") -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={then}")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click('button[type="submit"]')


def _item_id(page) -> int:
    match = re.search(r"/review/item/(\d+)/", page.url)
    assert match, page.url
    return int(match.group(1))


def test_a_reviewer_works_a_filtered_stream_one_key_per_item(
    new_context, live_server, make_user, queue_items, screenshot, settings
):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    acme = queue_items(4, tenant="acme", shard_id="shard-acme")
    others = queue_items(3, tenant="default")
    make_user("alice")
    page = new_context().new_page()
    _log_in(page, live_server, "alice")

    # The filter form makes the view; its URL is the stream.
    page.select_option('select[name="tenant"]', "acme")
    page.select_option('select[name="reason"]', "degraded")
    with page.expect_navigation():
        page.click('#filters button[type="submit"]')
    assert "tenant=acme" in page.url and "reason=degraded" in page.url
    assert page.locator("#queue-total").inner_text() == "7"
    assert page.locator("#queue-shown").inner_text() == "4 match the filters"
    assert page.locator("#left-in-view").inner_text() == "4"
    screenshot(page, "review-stream-queue")

    # ? shows the keyboard help and hides it again.
    assert not page.locator("#keys-help dl").is_visible()
    page.keyboard.press("?")
    assert page.locator("#keys-help dl").is_visible() and "label benign" in page.locator("#keys-help").inner_text()
    page.keyboard.press("?")
    assert not page.locator("#keys-help dl").is_visible()

    with page.expect_navigation():
        page.keyboard.press("n")
    seen = [_item_id(page)]
    assert "tenant=acme" in page.url
    for done in range(1, 5):
        assert page.locator("#session-labelled").inner_text() == str(done - 1)
        assert page.locator("#left-in-view").inner_text() == str(5 - done)
        with page.expect_navigation():
            page.keyboard.press("b")  # one key: label, and the next item of the view opens
        if done < 4:
            seen.append(_item_id(page))
            assert "tenant=acme" in page.url and "reason=degraded" in page.url
    assert seen == [i.pk for i in acme]
    assert page.url.endswith("/review/?tenant=acme&reason=degraded")
    assert "Nothing left in this view." in page.content()
    assert page.locator("#session-labelled").inner_text() == "4"
    assert page.locator("#left-in-view").inner_text() == "0"
    assert all(label_for("acme", i.pcs_id)["label"] == "benign" for i in acme)
    assert not ReviewLabel.objects.filter(item__in=others).exists()
    assert not ReviewItem.objects.filter(tenant="default", claimed_by__isnull=False).exists()

    # Undo names each of the last labels; the second newest reopens its own item.
    buttons = page.locator("button.undo-label")
    assert buttons.count() == 4
    assert acme[3].pcs_id[:15] in buttons.nth(0).inner_text() and acme[2].pcs_id[:15] in buttons.nth(1).inner_text()
    with page.expect_navigation():
        buttons.nth(1).click()
    assert _item_id(page) == acme[2].pk and label_for("acme", acme[2].pcs_id) is None
    assert page.locator("#session-labelled").inner_text() == "3"
    # Earlier labels of the shard are listed on the item page.
    assert page.locator("#shard-labels tbody tr").count() == 3
    # The plot has axes with ticks; each point carries its values for hovering.
    point = page.locator("svg.scaling-plot circle.point").first
    point.hover()
    assert point.locator("title").text_content().startswith("scale ")
    assert page.locator("svg.scaling-plot .x-tick").count() >= 2
    page.check('input[name="tag"][value="degraded"]')  # a checkbox keeps the focus: keys still work
    with page.expect_navigation():
        page.keyboard.press("a")
    assert ReviewLabel.objects.get(item=acme[2], withdrawn_at__isnull=True).tags == ["degraded"]
    assert label_for("acme", acme[2].pcs_id)["label"] == "anomalous"


def test_an_item_clicked_in_the_list_is_labelled_from_its_page(new_context, live_server, make_user, queue_items):
    items = queue_items(3, tenant="acme")
    make_user("alice")
    page = new_context().new_page()
    _log_in(page, live_server, "alice", then="/review/%3Ftenant%3Dacme%26sort%3D-age")
    assert page.locator("table.queue tbody tr").first.inner_text().find(items[2].pcs_id[:15]) >= 0  # newest first
    with page.expect_navigation():
        page.locator(f'a[href^="/review/item/{items[1].pk}/"]').click()
    assert "Nobody holds this item" in page.locator("#labelling").inner_text()
    with page.expect_navigation():
        page.keyboard.press("b")
    assert items[1].labels.get().reviewer.username == "alice"
    assert _item_id(page) == items[2].pk  # the view's next item: newest first


def test_reviewers_disagree_and_an_adjudicator_settles_it(new_context, live_server, make_user, queue_items, settings):
    settings.FLK_REVIEW_LABELS_PER_ITEM = 2
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    (item,) = queue_items(1, tenant="acme")
    make_user("alice")
    make_user("bob")
    carol = make_user("carol")
    carol.user_permissions.add(Permission.objects.get(codename="adjudicate_reviewitem"))
    for name, key in (("alice", "b"), ("bob", "a")):
        page = new_context().new_page()
        _log_in(page, live_server, name)
        with page.expect_navigation():
            page.keyboard.press("n")
        assert "by alice" not in page.content()  # the second label is blind to the first
        with page.expect_navigation():
            page.keyboard.press(key)
    assert ReviewItem.objects.get(pk=item.pk).stage == "adjudication"

    page = new_context().new_page()
    _log_in(page, live_server, "carol", then="/review/disagreements/")
    assert page.locator("#adjudication-waiting").inner_text() == "1"
    row = page.locator("#disagreements tbody tr").first.inner_text()
    assert "benign by alice" in row and "anomalous by bob" in row and "waiting for adjudication" in row
    with page.expect_navigation():
        page.keyboard.press("n")
    assert _item_id(page) == item.pk and "Adjudication:" in page.locator("#labelling").inner_text()
    assert page.locator("#item-labels li").count() == 2
    with page.expect_navigation():
        page.keyboard.press("a")
    assert label_for("acme", item.pcs_id)["label"] == "anomalous"
    page.goto(f"{live_server.url}/review/disagreements/")
    assert "settled" in page.locator("#disagreements tbody tr").first.inner_text()
    page.goto(f"{live_server.url}/review/stats/")
    pairs = page.locator("#reviewer-pairs tbody tr").first.inner_text()
    assert "alice · bob" in pairs and "-1.00" not in pairs
