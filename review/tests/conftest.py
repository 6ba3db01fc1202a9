"""Fixtures of the review tests: reviewers, queued items, and a real chromium driven by Playwright."""

from __future__ import annotations

import itertools
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from flk_site.testing import ensure_defaults, make_pcs

PASSWORD = "correct-horse-battery-staple"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_seq = itertools.count(1)


@pytest.fixture
def make_user(db):
    """make_user("alice", reviewer=True, staff=False, tenants=["acme"]) with password PASSWORD."""
    from django.contrib.auth.models import Group, User

    from review.models import REVIEWERS_GROUP, ReviewerTenant

    def _make(username: str, *, reviewer: bool = True, staff: bool = False, tenants: list[str] | None = None):
        user = User.objects.create_user(username, password=PASSWORD, is_staff=staff)
        if reviewer:
            # Transactional tests flush the data migration's group; recreate it like the migration does.
            group, _ = Group.objects.get_or_create(name=REVIEWERS_GROUP)
            user.groups.add(group)
        for tenant in tenants or []:
            ReviewerTenant.objects.create(user=user, tenant=tenant)
        return user

    return _make


@pytest.fixture
def queue_items(db):
    """queue_items(n, tenant="default", decision="escalate", ...) stores n PCS records and their review items.

    Items are received one second apart, oldest first, so queue order is the creation order.
    """
    from ingest.models import PcsRecord
    from review.models import ReviewItem
    from tenancy.models import Tenant

    def _make(n: int, *, tenant: str = "default", decision: str = "escalate", audit_sample: bool = False,
              shard_id: str | None = None, score: float | None = 0.42, age: timedelta = timedelta(hours=1)):  # fmt: skip
        ensure_defaults()
        tenant_row, _ = Tenant.objects.get_or_create(name=tenant, defaults={"sign_alg": "none"})
        start = timezone.now() - age
        items = []
        for i in range(n):
            pcs = make_pcs(shard_id=shard_id, degraded=decision == "escalate")
            received = start + timedelta(seconds=i)
            record = PcsRecord.objects.create(
                tenant=tenant_row, pcs_id=pcs["pcs_id"], shard_id=pcs["shard_id"], epoch=pcs["epoch"],
                signed_digest="0" * 64, body=pcs, d_hat=pcs["D_hat"], coh_star=pcs["coh_star"], r=pcs["r"],
                budget=pcs["budget"], regime=pcs["regime"], recomputed_d_hat=pcs["D_hat"], score=score,
                audit_sample=audit_sample, status_code=202, decision=decision,
                response={"pcs_id": pcs["pcs_id"], "decision": decision, "reasons": [{"code": "degraded", "detail": "x"}]},
                params_version=1, received_at=received, verified_at=received,
            )  # fmt: skip
            items.append(
                ReviewItem.objects.create(
                    record=record, tenant=tenant, pcs_id=pcs["pcs_id"], shard_id=pcs["shard_id"], decision=decision,
                    regime=pcs["regime"], reasons=["degraded"], score=score, audit_sample=audit_sample,
                    received_at=received,
                )
            )  # fmt: skip
        return items

    return _make


@pytest.fixture
def one_label_each(settings):
    """Every label is final: no item is drawn for a second opinion."""
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client

    return _login


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium under Playwright (never a downloaded browser); `make test` installs the package.

    Module-scoped: one browser for a file's tests, stopped before other files run (a second Playwright
    in the same thread would refuse to start).
    """
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: run `make browsers` (apt-get install chromium)")
    with pytest.MonkeyPatch.context() as mp, sync_playwright() as p:
        # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from such a
        # thread unless told that the test code itself is synchronous (it is).
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_context(chromium):
    """new_context() opens a fresh browser context (its own cookies); all are closed after the test.

    Closing matters: the live server's request threads hold a database connection for as long as the
    browser keeps its HTTP connection alive.
    """
    contexts = []

    def _new():
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        return context

    yield _new
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """screenshot(page, "queue") saves test-artifacts/<name>.png for people to look at after the run."""
    ARTIFACTS.mkdir(exist_ok=True)

    def _shot(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shot
