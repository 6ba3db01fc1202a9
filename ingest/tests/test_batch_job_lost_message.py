"""A batch answered 202 whose task message the broker lost (Redis restarted without persistence) is judged by
the periodic sweep once it is FLK_BATCH_JOB_STALE_SECONDS old: its status URL then gives every item's answer,
never "pending" for ever. A job younger than that is left to its worker."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from django.conf import settings as django_settings

from flk_site.celery import app as celery_app
from flk_site.testing import make_pcs, signed
from ingest import tasks
from ingest.models import BatchJob, PcsRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_queue_nobody_consumes():
    """Tasks go to the real Redis broker, on a queue of this test's own that no worker reads."""
    queue = f"flk-test-{uuid.uuid4().hex[:8]}"
    saved = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = False, queue
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    try:
        yield broker, queue
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = saved
        broker.delete(queue)


def test_a_batch_whose_task_message_was_lost_is_judged_by_the_sweep(client, acme, broker_queue_nobody_consumes,
                                                                     settings):  # fmt: skip
    broker, queue = broker_queue_nobody_consumes
    items = [signed(make_pcs()), signed(make_pcs(degraded=True, coh_star=0.2)), {"pcs_id": "x"}]
    queued = client.generic("POST", "/v1/pcs/batch", json.dumps(items), content_type="application/json",
                            HTTP_X_TENANT_ID="acme", HTTP_PREFER="respond-async")  # fmt: skip
    assert queued.status_code == 202
    url = queued.json()["status_url"]
    assert broker.llen(queue) == 1  # the job's one task message
    broker.delete(queue)  # what a Redis restarted without persistence does to it

    # Younger than the threshold: the sweep leaves it to a worker that may still be judging it.
    settings.FLK_BATCH_JOB_STALE_SECONDS = 300
    assert tasks.complete_stale_batch_jobs() == 0
    assert client.get(url, HTTP_X_TENANT_ID="acme").json()["status"] == "pending"

    settings.FLK_BATCH_JOB_STALE_SECONDS = 0
    assert tasks.complete_stale_batch_jobs() == 1
    status = client.get(url, HTTP_X_TENANT_ID="acme").json()
    assert status["status"] == "done"
    assert [r["status"] for r in status["results"]] == [200, 202, 400]
    assert PcsRecord.objects.filter(tenant__name="acme").count() == 2
    assert bytes(BatchJob.objects.get().body) == b""

    # A second sweep (or the lost message delivered after all) finds nothing to do and changes no answer.
    assert tasks.complete_stale_batch_jobs() == 0
    assert tasks.complete_batch_job(queued.json()["id"]) is False
    assert client.get(url, HTTP_X_TENANT_ID="acme").json() == status


def test_the_sweep_is_on_the_beat_schedule():
    entry = next(e for e in django_settings.CELERY_BEAT_SCHEDULE.values()
                 if e["task"] == "ingest.tasks.complete_stale_batch_jobs")  # fmt: skip
    assert entry["schedule"] <= 300
    assert "ingest.tasks.complete_stale_batch_jobs" in celery_app.tasks
