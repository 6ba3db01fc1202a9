"""In a real browser: edit the parameters, run a what-if on the draft, activate it; the API then uses it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests
from django.db import connections

from flk_site.testing import make_pcs
from policy.models import VerifyParams, WhatIfReport

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture
def browser_page(monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium")
    assert executable, "the Debian chromium package is required for browser tests"
    # Playwright's sync API runs an event loop in this thread; the ORM calls made here are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page
        browser.close()
        # Connections opened while Playwright's loop was set belong to that context: close them here, or the
        # test database cannot be dropped at the end of the run.
        connections.close_all()


def api_submit(live_server, pcs) -> dict:
    response = requests.post(f"{live_server.url}/v1/pcs/submit", data=json.dumps(pcs),
                             headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
    return response.json()


@pytest.mark.slow
def test_edit_whatif_activate_in_the_browser(live_server, browser_page, django_user_model, settings):
    from flk_site.testing import ensure_defaults

    ensure_defaults()
    settings.PCS_SIGN_ALG = "none"
    django_user_model.objects.create_superuser("root", "root@example.com", "a-long-password-1")
    for _ in range(5):
        assert api_submit(live_server, make_pcs())["params_version"] == 1
    page = browser_page
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")

    # Edit the version in service: the save becomes draft v2.
    v1 = VerifyParams.objects.get(version=1)
    page.goto(f"{live_server.url}/admin/policy/verifyparams/{v1.pk}/change/")
    page.fill("#id_base", "0.2")
    page.fill("#id_reason", "raise the budget base")
    page.click("input[name=_save]")
    page.wait_for_selector("text=Saved as draft v2")
    draft = VerifyParams.objects.get(version=2)
    assert not draft.is_active

    # What-if on the draft.
    page.click("a[href$='/whatif/']")
    page.fill("#id_sample_size", "100")
    page.click("input[value='Run what-if']")
    page.wait_for_selector(".whatif-transitions")
    assert "accept→escalate: 5" in page.inner_text(".whatif-transitions")
    assert WhatIfReport.objects.get().status == "done"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-whatif-report.png"), full_page=True)

    # Activate it.
    page.goto(f"{live_server.url}/admin/policy/verifyparams/{draft.pk}/change/")
    page.click("a[href$='/activate/']")
    page.click("input[value='Activate v2']")
    page.wait_for_selector("text=v2 is now active")
    page.screenshot(path=str(ARTIFACTS / "admin-params-activated.png"), full_page=True)
    assert list(VerifyParams.objects.filter(is_active=True).values_list("version", flat=True)) == [2]
    assert api_submit(live_server, make_pcs())["params_version"] == 2
