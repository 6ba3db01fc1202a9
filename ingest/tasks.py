"""Celery tasks of ingest: thin wrappers over ingest.replay, idempotent and acks_late (safe to run twice)."""

from __future__ import annotations

from celery import shared_task

from ingest import batch, replay


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
    from calibration.services import generation_pinned as snapshot_generation_pinned
    from ingest.config_cache import generation_pinned

    # Tenants, keys, params and snapshots are checked for changes once for the batch, as a request does.
    with generation_pinned(), snapshot_generation_pinned():
        return batch.complete_job(job_id)
