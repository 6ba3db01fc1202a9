"""WAL replay and WAL retention: the operations that bring the stored outcomes in line with the inbox WAL.

Replay verifies and stores every WAL body that has no stored outcome (after a crash, after a database
outage) through the same ``process_body`` as the request path, with the body's original ``received_at``,
so the stored answer is the one the first delivery would have had. Which records already have an outcome
is found with one query per batch on the unique (tenant, pcs_id); a second run finds them all and changes
nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, DataError, connection, transaction
from django.utils import timezone

from agent_client.canonical import protocol_of, signing_digest
from agent_client.schema import PcsInvalid, parse_pcs
from calibration.services import generation_pinned as snapshot_generation_pinned
from ingest import metrics, wal
from ingest.calibration_feeds import awaiting_audit_label
from ingest.models import BatchJob, PcsRecord
from ingest.services import Answer, process_bodies, process_body
from policy.params import active_params_memo
from tenancy import keyring
from tenancy.config_cache import generation_pinned
from tenancy.keyring import SignatureRejected, TenantCredentials

log = logging.getLogger("flk.ingest.replay")
DEFAULT_BATCH = 1000
_TABLE = PcsRecord._meta.db_table
# Parameters per query on SQLite, far below its limit (32,766 since 3.32; 999 before).
_SQLITE_CHUNK = 500


@dataclass
class ReplayReport:
    seen: int = 0  # intact WAL records read
    already_stored: int = 0  # records whose (tenant, pcs_id) had an outcome before this run
    stored: int = 0  # new outcomes stored by this run
    skipped: int = 0  # bodies that never get an outcome (bad JSON or schema, bad signature, unknown tenant)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + 1

    def as_dict(self) -> dict[str, object]:
        return {
            "seen": self.seen,
            "already_stored": self.already_stored,
            "stored": self.stored,
            "skipped": self.skipped,
            "skipped_by_reason": dict(self.skipped_by_reason),
            "interrupted": self.interrupted,
        }


def _pcs_id_of(body: bytes) -> str | None:
    """The claimed pcs_id of a body, or None when it is not a JSON object with a string pcs_id."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past the parser's depth: unparsable too
        return None
    pcs_id = parsed.get("pcs_id") if isinstance(parsed, dict) else None
    return pcs_id if isinstance(pcs_id, str) else None


def stored_keys(keys: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which of the (tenant_id, pcs_id) pairs have a stored outcome: one indexed query for the whole batch."""
    keys = list(keys)
    if not keys:
        return set()
    if connection.vendor != "postgresql":  # the embedded SQLite has no arrays: a bounded IN list per chunk
        wanted = set(keys)
        found: set[tuple[int, str]] = set()
        pcs_ids = sorted({k[1] for k in keys})
        for start in range(0, len(pcs_ids), _SQLITE_CHUNK):
            rows = PcsRecord.objects.filter(pcs_id__in=pcs_ids[start : start + _SQLITE_CHUNK])
            found.update(key for key in rows.values_list("tenant_id", "pcs_id") if key in wanted)
        return found
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.tenant_id, t.pcs_id FROM {_TABLE} t "
            f"JOIN unnest(%s::bigint[], %s::text[]) AS k(tenant_id, pcs_id) "
            f"ON t.tenant_id = k.tenant_id AND t.pcs_id = k.pcs_id",
            [[k[0] for k in keys], [k[1] for k in keys]],
        )
        return {(row[0], row[1]) for row in cursor.fetchall()}


def _batches(records: Iterator[wal.WalRecord], size: int) -> Iterator[list[wal.WalRecord]]:
    batch: list[wal.WalRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _credentials(name: str) -> TenantCredentials | None:
    creds = keyring.credentials_memo.get(name)
    return creds if creds is not None and creds.enabled else None


def _store_slice(todo: list[tuple[TenantCredentials, wal.WalRecord]], report: ReplayReport) -> None:
    """The slice's outcomes, stored by a few multi-row statements (inside the caller's transaction)."""
    for answer in process_bodies([(creds, record.body, record.received_at) for creds, record in todo]):
        _count(answer, report)


def _store_rows(todo: list[tuple[TenantCredentials, wal.WalRecord]], report: ReplayReport) -> None:
    """The slice again, one body and one commit at a time: a bad row then costs only itself."""
    for creds, record in todo:
        try:
            answer = process_body(creds, record.body, record.received_at)
        except DataError:
            report.skip("http_400")  # a value the database refuses: the request path answered 400 too
            continue
        _count(answer, report)


def _count(answer: Answer, report: ReplayReport) -> None:
    if answer.status in (200, 202) and not answer.dedup:
        report.stored += 1
    elif answer.status in (200, 202):
        report.already_stored += 1
    else:
        report.skip(f"http_{answer.status}")


def _store_slice_committed(todo: list[tuple[TenantCredentials, wal.WalRecord]], threaded: bool) -> ReplayReport:
    """Store one slice in one transaction (one commit, not one per record), row by row if that fails."""
    report = ReplayReport()
    try:
        # Tenants, keys, params and calibration snapshots are checked for changes once per slice, not per PCS.
        with generation_pinned(), snapshot_generation_pinned():
            try:
                with transaction.atomic():
                    _store_slice(todo, report)
            except DatabaseError:
                # One bad row must not block the rest: redo the slice row by row (ON CONFLICT makes it safe).
                log.warning("replay_batch_retry", extra={"event": "replay_batch_retry", "records": len(todo)})
                report = ReplayReport()
                _store_rows(todo, report)
    finally:
        if threaded:
            connection.close()  # the thread's own connection; the thread ends with this slice
    return report


def _store_batch(todo: list[tuple[TenantCredentials, wal.WalRecord]], report: ReplayReport, workers: int) -> None:
    # Distinct (tenant, pcs_id) per batch, so slices never wait on each other's rows; threads overlap one
    # slice's database round trips with another's verification.
    if workers <= 1 or len(todo) < 2 * workers:
        parts = [_store_slice_committed(todo, threaded=False)]
    else:
        slices = [todo[i::workers] for i in range(workers)]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="flk-replay") as pool:
            parts = list(pool.map(lambda part: _store_slice_committed(part, threaded=True), slices))
    for part in parts:
        report.stored += part.stored
        report.already_stored += part.already_stored
        for reason, n in part.skipped_by_reason.items():
            report.skipped += n
            report.skipped_by_reason[reason] = report.skipped_by_reason.get(reason, 0) + n


def replay_wal(
    directory: Path | None = None,
    batch_size: int = DEFAULT_BATCH,
    should_stop: Callable[[], bool] = lambda: False,
    workers: int | None = None,
) -> ReplayReport:
    """Verify and store every WAL body without a stored outcome; idempotent, in bounded batches.

    Each batch is one lookup of which (tenant, pcs_id) are stored, then the missing ones are verified and
    stored by ``process_body`` in a few transactions (FLK_REPLAY_WORKERS threads, one slice each). The
    INSERT ... ON CONFLICT DO NOTHING of the store keeps a concurrent request or a concurrent replay from
    producing a second row.
    """
    workers = workers if workers is not None else getattr(settings, "FLK_REPLAY_WORKERS", 4)
    report = ReplayReport()
    active_params_memo.get("active")  # NoActiveParams now, not in the middle of a batch
    backlog = 0
    for batch in _batches(wal.iter_records(directory), batch_size):
        if should_stop():
            report.interrupted = True
            break
        report.seen += len(batch)
        candidates: list[tuple[TenantCredentials, wal.WalRecord, str]] = []
        with generation_pinned():
            for record in batch:
                creds = _credentials(record.tenant)
                if creds is None:
                    report.skip("unknown_tenant")
                    continue
                pcs_id = _pcs_id_of(record.body)
                if pcs_id is None:
                    report.skip("unparsable")
                    continue
                candidates.append((creds, record, pcs_id))
        stored = stored_keys({(c.tenant_id, p) for c, _, p in candidates})
        todo: list[tuple[TenantCredentials, wal.WalRecord]] = []
        pending: set[tuple[int, str]] = set()
        for creds, record, pcs_id in candidates:
            key = (creds.tenant_id, pcs_id)
            if key in stored or key in pending:  # a resubmission of the same PCS is stored once
                report.already_stored += 1
                continue
            pending.add(key)
            todo.append((creds, record))
        backlog += len(todo)
        before = report.stored
        _store_batch(todo, report, workers)
        metrics.replayed(report.stored - before)
    metrics.set_replay_backlog(backlog)
    log.info("wal_replayed", extra={"event": "wal_replayed", **report.as_dict()})
    return report


@dataclass
class RetentionReport:
    deleted: list[str] = field(default_factory=list)
    kept_unstored: list[str] = field(default_factory=list)


def _segment_fully_stored(path: Path) -> bool:
    """Whether every body of the segment has a stored outcome or can never get one (replay would skip it)."""
    bodies: dict[tuple[int, str], list[tuple[TenantCredentials, wal.WalRecord]]] = {}
    for record in wal.read_segment(path):
        creds = _credentials(record.tenant)
        pcs_id = _pcs_id_of(record.body)
        if creds is None or pcs_id is None:
            continue  # such a body never gets an outcome; it does not hold the segment
        bodies.setdefault((creds.tenant_id, pcs_id), []).append((creds, record))
    keys = list(bodies)
    for start in range(0, len(keys), DEFAULT_BATCH):
        chunk = keys[start : start + DEFAULT_BATCH]
        stored = stored_keys(chunk)
        for key in chunk:
            if key in stored:
                continue
            # Not stored: it holds the segment unless the verifier refuses it (schema, signature), as replay
            # would, for ever; a body refused that way would otherwise keep its segment on disk for good.
            if not all(_refused(creds, record) for creds, record in bodies[key]):
                return False
    return True


def _refused(creds: TenantCredentials, record: wal.WalRecord) -> bool:
    """Whether this body is refused for good: its schema or signature (a 400 or 401, which replay skips), a
    version older than the tenant's minimum (a 403), or a value the database refuses (infinity from 1e400 in
    a field the schema does not check, a 400 too).

    The checks of ``check_body`` without its log line and metric: retention asks every few hours, and a
    refusal must be counted once, when it is answered.
    """
    try:
        pcs = parse_pcs(record.body)
        keyring.check_signature(creds, signing_digest(pcs), pcs.get("sig"), record.received_at)
        json.dumps(pcs, allow_nan=False)  # what the JSON column takes
    except (PcsInvalid, SignatureRejected, ValueError):
        return True
    protocol = protocol_of(pcs["version"])  # never None once the schema passed
    return protocol is None or keyring.below_minimum_version(creds, protocol)


def purge_wal_segments(directory: Path | None = None, retention_days: int | None = None) -> RetentionReport:
    """Delete WAL segments last written more than FLK_WAL_RETENTION_DAYS ago whose bodies are all stored.

    A segment that still holds a body without a stored outcome is kept (and logged): replay needs it.
    A body that can never get an outcome (bad JSON, unknown tenant, refused for its schema, signature or by
    the database) does not hold its segment.
    """
    days = retention_days if retention_days is not None else settings.FLK_WAL_RETENTION_DAYS
    cutoff = time.time() - days * 86400
    report = RetentionReport()
    open_here = wal.active_segments()
    for path in wal.segments(directory):
        try:
            if path.stat().st_mtime >= cutoff or path.name in open_here:
                continue
            if not _segment_fully_stored(path):
                report.kept_unstored.append(path.name)
                log.warning("wal_segment_kept", extra={"event": "wal_segment_kept", "segment": path.name})
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        report.deleted.append(path.name)
    log.info("wal_segments_purged", extra={"event": "wal_segments_purged", "deleted": len(report.deleted),
                                           "kept_unstored": len(report.kept_unstored)})  # fmt: skip
    return report


def purge_expired_outcomes(batch_size: int = 5000) -> int:
    """Delete stored outcomes received more than the active VerifyParams.dedup_ttl_days ago, and the answers of
    async batches finished that long ago; returns the count of outcomes.

    An audit sample is kept until it is labelled or explicitly expired (``calibration.models.ExpiredAudit``):
    its review item goes with its outcome, and an audit label lost to the purge would bias the calibration set
    towards the PCS reviewers label quickly. Deletes in bounded batches so a large backlog never holds one long
    transaction or lock.
    """
    params = active_params_memo.get("active")
    cutoff = timezone.now() - timedelta(days=params.dedup_ttl_days)
    expired = PcsRecord.objects.filter(received_at__lt=cutoff).exclude(awaiting_audit_label())
    total = 0
    while True:
        ids = list(expired.values_list("id", flat=True)[:batch_size])
        if not ids:
            break
        PcsRecord.objects.filter(id__in=ids).delete()
        total += len(ids)
    # A finished async batch's answers are readable at its status URL as long as its outcomes are kept.
    jobs, _ = BatchJob.objects.finished_before(cutoff).delete()
    log.info("expired_outcomes_purged", extra={"event": "expired_outcomes_purged", "deleted": total,
                                               "batch_jobs_deleted": jobs})  # fmt: skip
    return total
