"""The sweep of pending async batches (every 60 s) and the purge of finished ones read through the index on
``done_at``, so their cost follows the few rows they act on, not the answers kept for the dedup TTL.

Checked on the real PostgreSQL planner with statistics of a table that holds 20 000 finished batches and
three pending ones; without it both queries are sequential scans of the whole table.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from ingest.models import BatchJob
from tenancy.models import DEFAULT_TENANT, Tenant

pytestmark = pytest.mark.django_db

FINISHED, PENDING = 20_000, 3


@pytest.fixture
def kept_answers(db):
    tenant, _ = Tenant.objects.get_or_create(name=DEFAULT_TENANT)
    now = timezone.now()
    finished = [
        BatchJob(tenant=tenant, body=b"", kind="json", items=1, received_at=now - timedelta(minutes=i),
                 done_at=now - timedelta(minutes=i), results=[{"status": 200}])
        for i in range(FINISHED)
    ]  # fmt: skip
    pending = [
        BatchJob(tenant=tenant, body=b"[]", kind="json", items=0, received_at=now - timedelta(hours=1))
        for _ in range(PENDING)
    ]
    BatchJob.objects.bulk_create(finished + pending, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {BatchJob._meta.db_table}")
    return now


def test_the_sweep_reads_only_the_pending_batches(kept_answers):
    stale = BatchJob.objects.pending_before(kept_answers - timedelta(minutes=5))
    plan = stale.values_list("id", flat=True).explain()
    assert "batch_job_done_at" in plan and "Seq Scan" not in plan, plan
    assert stale.count() == PENDING


def test_the_purge_reads_only_the_batches_past_the_ttl(kept_answers):
    expired = BatchJob.objects.finished_before(kept_answers - timedelta(minutes=FINISHED - 11))
    plan = expired.explain()
    assert "batch_job_done_at" in plan and "Seq Scan" not in plan, plan
    assert expired.count() == 10
