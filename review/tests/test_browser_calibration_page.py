"""In a real browser, the calibration page draws its charts with readable axes and fits a phone's screen."""

from __future__ import annotations

import pytest

from review.tests.conftest import PASSWORD
from review.tests.test_calibration_page import calibrated_acme  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_calibration_page_shows_its_charts_without_overflow(
    new_context,
    live_server,
    make_user,
    calibrated_acme,  # noqa: F811
    screenshot,
    width,
):
    make_user("sam", staff=True)
    context = new_context()
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/?next=/review/calibration/acme/")
    page.fill('input[name="username"]', "sam")
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click('button[type="submit"]')
    assert page.url.endswith("/review/calibration/acme/")
    charts = page.locator("svg.chart")
    assert charts.count() == 5
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and 0 < box["width"] <= width and box["height"] > 50
        assert charts.nth(i).locator("text.tick").count() >= 4  # values on the axes
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"calibration-page-{width}")
