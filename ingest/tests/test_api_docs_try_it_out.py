"""In a real browser: the API docs' "Try it out" with the example shown submits a PCS that is accepted."""

from __future__ import annotations

import pytest

from ingest.models import PcsRecord
from ingest.openapi import PCS_V0_2_EXAMPLE
from ingest.tests.test_admin_browser_flow import browser_page  # noqa: F401 - the shared chromium fixture


@pytest.mark.slow
def test_try_it_out_with_the_example_is_accepted(live_server, browser_page, settings):  # noqa: F811
    from flk_site.testing import ensure_defaults

    ensure_defaults()
    settings.PCS_SIGN_ALG = "none"  # as under `make run`
    page = browser_page
    page.goto(f"{live_server.url}/api/docs/")
    operation = page.locator("[id$='pcs_submit']").first
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=15000)
    assert status.inner_text().strip() == "200"
    assert PcsRecord.objects.get().pcs_id == PCS_V0_2_EXAMPLE["pcs_id"]
