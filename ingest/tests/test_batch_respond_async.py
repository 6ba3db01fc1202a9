"""Prefer: respond-async: 202 with a status URL at once; a real Celery worker judges the items; the URL then
reports each item's answer, the same as the synchronous batch would have given."""

from __future__ import annotations

import json
import time

import pytest

from flk_site.testing import make_pcs, signed
from ingest.models import BatchJob, PcsRecord

pytestmark = pytest.mark.django_db(transaction=True)  # the worker reads what the test committed


def post(client, data, **headers):
    return client.generic("POST", "/v1/pcs/batch", json.dumps(data), content_type="application/json",
                          HTTP_X_TENANT_ID="acme", **headers)  # fmt: skip


def test_a_batch_sent_async_is_judged_by_the_worker_and_read_at_its_status_url(client, acme, real_celery_worker):
    stored = signed(make_pcs())
    assert post(client, [stored]).status_code == 200
    items = [signed(make_pcs()), stored, signed(dict(stored, coh_star=0.75, budget=0.289)), {"pcs_id": "x"}]
    queued = post(client, items, HTTP_PREFER="respond-async")
    assert queued.status_code == 202 and queued["Preference-Applied"] == "respond-async"
    url = queued.json()["status_url"]
    assert queued["Location"] == url and queued.json()["items"] == 4
    deadline = time.monotonic() + 60
    while (status := client.get(url, HTTP_X_TENANT_ID="acme").json())["status"] == "pending":
        assert time.monotonic() < deadline, real_celery_worker.read_text()[-2000:]
        time.sleep(0.2)
    results = status["results"]
    assert [r["status"] for r in results] == [200, 200, 409, 400]
    assert results[0]["body"]["dedup"] is False and results[1]["body"]["dedup"] is True
    assert PcsRecord.objects.filter(tenant__name="acme").count() == 2
    # Another tenant learns nothing of it; the body is not kept once judged.
    assert client.get(url, HTTP_X_TENANT_ID="default").status_code == 404
    assert bytes(BatchJob.objects.get().body) == b""


def test_a_batch_refused_whole_is_not_queued(client, acme):
    assert post(client, {"not": "a list"}, HTTP_PREFER="respond-async").status_code == 400
    assert BatchJob.objects.count() == 0
