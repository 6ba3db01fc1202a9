"""A what-if report queued by the release before the policy app is still computed after the upgrade.

The task was registered as ``ingest.whatif_tasks.run_whatif_report``; messages carry that name, and a worker
that did not know it would drop them (``Received unregistered task``) and leave the report pending for ever.
"""

from __future__ import annotations

import time

import pytest

from flk_site.celery import app as celery_app
from flk_site.testing import make_pcs
from policy.models import WhatIfReport
from policy.tests.test_admin_whatif import draft_with

QUEUED_BY_THE_RELEASE_BEFORE = "ingest.whatif_tasks.run_whatif_report"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_message_with_the_old_task_name_is_consumed(unsigned_default_tenant, submit, real_celery_worker):
    for _ in range(2):
        submit(make_pcs())
    report = WhatIfReport.objects.create(params=draft_with(base=0.2), sample_size=100)
    celery_app.send_task(QUEUED_BY_THE_RELEASE_BEFORE, args=[report.pk])
    deadline = time.monotonic() + 60
    while report.status in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        report.refresh_from_db()
    assert report.status == "done", real_celery_worker.read_text()[-3000:]
    assert report.examined == 2
