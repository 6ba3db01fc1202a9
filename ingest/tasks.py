"""Celery tasks of ingest: thin wrappers over ingest.replay, idempotent and acks_late (safe to run twice)."""

from __future__ import annotations

from celery import shared_task

from ingest import replay


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
