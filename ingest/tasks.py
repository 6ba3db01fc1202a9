"""Celery tasks of ingest: thin wrappers over ingest.replay and ingest.batch, idempotent and acks_late (safe to
run twice)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from ingest import batch, replay
from tenancy.config_cache import request_generations


@shared_task(acks_late=True, ignore_result=True)
def replay_wal() -> dict[str, object]:
    """Verify and store every WAL body without a stored outcome (a rerun finds them stored)."""
    return replay.replay_wal().as_dict()


@shared_task(acks_late=True, ignore_result=True)
def purge_wal_segments() -> int:
    """Delete WAL segments past FLK_WAL_RETENTION_DAYS whose bodies all have stored outcomes."""
    return len(replay.purge_wal_segments().deleted)


@shared_task(acks_late=True, ignore_result=True)
def purge_expired_outcomes() -> int:
    """Delete stored outcomes older than the active VerifyParams.dedup_ttl_days."""
    return replay.purge_expired_outcomes()


@shared_task(acks_late=True, ignore_result=True)
def complete_batch_job(job_id: str) -> bool:
    """Judge the items of a batch answered 202 and keep their answers (a rerun finds it done)."""
    with request_generations():  # tenants, keys, params and snapshots checked once, as a request does
        return batch.complete_job(job_id)


@shared_task(acks_late=True, ignore_result=True)
def complete_stale_batch_jobs() -> int:
    """Judge the batches answered 202 whose task message was lost (FLK_BATCH_JOB_STALE_SECONDS after receipt)."""
    with request_generations():  # tenants, keys, params and snapshots checked once, as a request does
        return batch.complete_stale_jobs(timedelta(seconds=settings.FLK_BATCH_JOB_STALE_SECONDS))
