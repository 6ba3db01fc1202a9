"""``submit_batch``: many PCS of one tenant in one request (``POST /v1/pcs/batch``).

Each item gets exactly the answer it would get alone from ``submit_pcs`` (status, body, dedup, 409 on a
conflict), in order, because it goes through the same steps and the same functions: ``authenticate_body``
(schema and signature), the tenant's token bucket (a token per signed item), ``check_authentic`` (version,
verification) and ``stored_answer`` (dedup on the stored outcome). Only the waits are paid once per batch:

- the whole body is one WAL record and one fsync, before any item is parsed (``wal.append`` with the batch
  kind; the WAL reader gives the replay one record per item);
- the outcomes are stored by multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` statements
  (``store.insert_many``) in one transaction, so one commit;
- the tenant's bucket is charged once for all signed items when it holds them.

What the whole batch gets instead of per-item answers: 415 for another media type, 429 from the address
bucket, 400 for a body that is not a list (or a bad ``X-Tenant-Id``), 401 for an unknown or disabled tenant,
413 for too many items (FLK_BATCH_MAX_ITEMS) or bytes (FLK_BATCH_MAX_BYTES, in the view), and 503 when the
WAL or the database is unavailable: then nothing was stored, every item is kept in the WAL for replay, and
the client sends the batch again. Items of the same ``pcs_id`` within a batch are answered as if they had
come one after the other: the first one's verdict, then a replay (or a 409).

Known limit: an item whose value the database refuses (a 400 alone) makes the multi-row insert fail; the
batch's outcomes are then stored row by row, each under its own savepoint, which costs what single
submissions would.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DataError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from ingest import metrics, ratelimit, store, wal
from ingest.batch_items import BatchMalformed, split_items
from ingest.models import BatchJob
from ingest.services import (
    DATABASE_UNAVAILABLE,
    DEFAULT_TENANT,
    Answer,
    Authentic,
    Checked,
    _wal_budget_spent,
    _wal_full,
    _wal_unavailable,
    admitted,
    authenticate_body,
    check_authentic,
    error,
    is_json_content_type,
    resolve_tenant,
    stored_answer,
    tenant_gate,
    unavailable,
)
from policy.params import NoActiveParams
from tenancy import keyring
from tenancy.keyring import TenantCredentials

log = logging.getLogger("flk.ingest")
NDJSON = "application/x-ndjson"
KEPT_FOR_REPLAY = "the database is unavailable; the batch was kept for replay, retry later"


def batch_kind(content_type: str | None) -> str | None:
    """The WAL's batch kind for a request's media type, or None when it is neither JSON nor NDJSON."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in (NDJSON, "application/jsonl", "application/jsonlines"):
        return wal.BATCH_NDJSON
    return wal.BATCH_JSON if is_json_content_type(content_type) else None


def submit_batch(
    tenant_header: str | None, content_type: str | None, body: bytes, client: str = "", respond_async: bool = False
) -> Answer:
    """POST /v1/pcs/batch after the byte limit: 200 with one answer per item, in order, or one answer for the
    whole batch (module docstring). ``client`` is the caller's address. ``respond_async``: 202 with a status URL
    once the body is durable; a worker judges the items (``complete_job``)."""
    kind = batch_kind(content_type)
    if kind is None:
        return error(415, "unsupported_media_type", f"Unsupported media type {content_type or ''!r}: send "
                     f"application/json (an array of PCS) or {NDJSON} (one PCS a line).")  # fmt: skip
    # The items are charged to the tenant's bucket once their signatures verify (``judge_items``).
    return admitted(
        tenant_header,
        body,
        client,
        lambda known, gate: _submit_batch(tenant_header, body, kind, known, gate, respond_async),
    )


def _submit_batch(
    tenant_header: str | None,
    body: bytes,
    kind: str,
    known: TenantCredentials | None,
    gate: ratelimit.Gate,
    respond_async: bool = False,
) -> Answer:
    name = tenant_header or DEFAULT_TENANT
    try:
        creds = store.reusing_connection(resolve_tenant, tenant_header)
    except (OperationalError, InterfaceError):
        return _keep_during_outage(known, name, body, kind, gate)
    passed = tenant_gate(creds, known, gate, len(body))
    if isinstance(passed, Answer):
        return passed
    assert not isinstance(creds, Answer)
    received_at = timezone.now()
    # The whole body is durable before anything in it is parsed: one record, one fsync for every item.
    try:
        wal.append(creds.name, body, received_at, kind)
    except wal.WalFull:
        return _wal_full(creds.name)
    except wal.WalUnavailable:
        return _wal_unavailable(creds.name)
    try:
        items = split_items(body, ndjson=kind == wal.BATCH_NDJSON)
    except BatchMalformed as exc:
        ratelimit.authentication_failed(creds.name)
        return error(400, "batch_malformed", f"{exc}; nothing was stored")
    limit = settings.FLK_BATCH_MAX_ITEMS
    if len(items) > limit:  # the WAL reader drops such a batch too: replay stores none of it
        return error(413, "batch_too_large", f"a batch holds at most {limit} PCS, this one {len(items)}; nothing "
                     "was stored: send it in smaller batches")  # fmt: skip
    if respond_async:
        try:
            return store.reusing_connection(_queue_job, creds, body, kind, len(items), received_at)
        except (OperationalError, InterfaceError):
            log.warning("database_unavailable", extra={"event": "database_unavailable", "tenant": creds.name})
            return unavailable(KEPT_FOR_REPLAY, "database_unavailable")
    try:
        answers = store.reusing_connection(judge_items, creds, items, received_at, gate.charged_bytes, len(body))
    except (OperationalError, InterfaceError):
        log.warning("database_unavailable", extra={"event": "database_unavailable", "tenant": creds.name})
        return unavailable(KEPT_FOR_REPLAY, "database_unavailable")
    except NoActiveParams:
        log.error("no_active_verify_params")
        return unavailable("no VerifyParams version is active; an admin must activate one", "no_active_params")
    metrics.batch_observed(creds.name, len(items))
    return Answer(200, {"results": batch_results(answers)}, tenant=creds.name)


def batch_results(answers: list[Answer]) -> list[dict[str, Any]]:
    """The ``results`` of a batch's answer: each item's status and body (and Retry-After, when it has one)."""
    results = []
    for answer in answers:
        result: dict[str, Any] = {"status": answer.status, "body": answer.body}
        if "Retry-After" in answer.headers:
            result["retry_after"] = int(answer.headers["Retry-After"])
        results.append(result)
    return results


def status_url(job_id: str) -> str:
    return f"/v1/pcs/batch/{job_id}"


def _queue_job(creds: TenantCredentials, body: bytes, kind: str, items: int, received_at: datetime) -> Answer:
    """Keep the batch for a worker and answer 202 with where to read its answers."""
    job = BatchJob.objects.create(tenant_id=creds.tenant_id, body=body, kind=kind, items=items,
                                  received_at=received_at)  # fmt: skip
    # Enqueued once the row is committed, so that the worker finds it (autocommit here: at once).
    transaction.on_commit(lambda: _enqueue_job(str(job.id)))
    url = status_url(str(job.id))
    answer = Answer(202, {"id": str(job.id), "status": "pending", "items": items, "status_url": url},
                    tenant=creds.name)  # fmt: skip
    answer.headers.update({"Location": url, "Preference-Applied": "respond-async"})
    return answer


def _enqueue_job(job_id: str) -> None:
    from ingest import tasks

    try:
        tasks.complete_batch_job.delay(job_id)
    except Exception:  # the broker is unreachable: the batch is judged now rather than never
        log.warning("batch_job_enqueue_failed", extra={"event": "batch_job_enqueue_failed", "job": job_id})
        complete_job(job_id)


def complete_job(job_id: str) -> bool:
    """Judge the items of a queued batch and keep their answers; False when there was nothing to do (done
    already, or no such job). Idempotent: the answers are kept by a conditional update, so a second run (a
    redelivered task) keeps the first run's answers, and its own stored nothing new."""
    job = BatchJob.objects.filter(id=job_id, done_at__isnull=True).select_related("tenant").first()
    if job is None:
        return False
    creds = keyring.credentials_memo.get(job.tenant.name)
    items = split_items(bytes(job.body), ndjson=job.kind == wal.BATCH_NDJSON)
    if creds is None or not creds.enabled:
        answers = [error(401, "unknown_tenant", f"unknown tenant {job.tenant.name!r}")] * len(items)
    else:
        answers = judge_items(creds, items, job.received_at)
        metrics.batch_observed(creds.name, len(items))
    done = BatchJob.objects.filter(id=job.id, done_at__isnull=True)  # one row updated: these answers are kept
    return bool(done.update(results=batch_results(answers), done_at=timezone.now(), body=b""))


def complete_stale_jobs(older_than: timedelta) -> int:
    """Judge every batch still pending ``older_than`` after it was received; how many this run completed.

    A queued job's only trace in the broker is its task message, which a Redis restarted without persistence
    loses and a worker killed mid-task leaves invisible until the broker's visibility timeout: the job's row
    and body are in the database, so this sweep (a periodic task) finishes what the message no longer will.
    A job the worker is judging meanwhile keeps one set of answers (``complete_job`` is idempotent).
    """
    cutoff = timezone.now() - older_than
    stale = BatchJob.objects.pending_before(cutoff)
    completed = 0
    for job_id in stale.values_list("id", flat=True):
        if complete_job(str(job_id)):
            completed += 1
            log.warning("batch_job_swept", extra={"event": "batch_job_swept", "job": str(job_id)})
    return completed


def job_status(tenant_header: str | None, job_id: str) -> Answer:
    """GET /v1/pcs/batch/<id>: the batch's answers once done, else its pending state; 404 for another tenant."""
    name = DEFAULT_TENANT if tenant_header is None else tenant_header
    try:
        job = BatchJob.objects.filter(id=job_id, tenant__name=name).first()
    except (OperationalError, InterfaceError):
        return unavailable(DATABASE_UNAVAILABLE, "database_unavailable")
    if job is None:
        return error(404, "not_found", "no batch with this id for this tenant")
    body: dict[str, Any] = {"id": str(job.id), "status": "done" if job.done_at else "pending", "items": job.items}
    if job.done_at:
        body["results"] = job.results
    answer = Answer(200, body, tenant=name)
    answer.headers["Cache-Control"] = "no-store"
    return answer


def judge_items(
    creds: TenantCredentials, items: list[bytes], received_at: datetime, charged_bytes: int = 0, size: int = 0
) -> list[Answer]:
    """The answer of each item, as ``submit_pcs`` would give it alone, with its outcome stored.

    The items' bodies are in the WAL already. ``charged_bytes`` of the body's ``size`` were charged to the
    tenant's WAL budget; the share of the signed items comes back, as a single signed body's bytes do.
    """
    answers: list[Answer | None] = [None] * len(items)
    authentic: list[tuple[int, Authentic]] = []
    failures = 0
    limit = settings.FLK_MAX_BODY_BYTES
    for i, item in enumerate(items):
        if len(item) > limit:  # alone, it would have been refused before anything else (and never stored)
            answers[i] = error(413, "body_too_large", f"body exceeds {limit} bytes")
            continue
        metrics.ingested(creds.name)
        found = authenticate_body(creds, item, received_at)
        if isinstance(found, Answer):
            answers[i] = found
            failures += found.status in (400, 401)
        else:
            authentic.append((i, found))
    if failures:
        ratelimit.authentication_failed(creds.name, count=failures)
    refund = charged_bytes * len(authentic) // len(items) if items else 0
    allowed, retry_after = ratelimit.authenticated_items(
        creds.name, creds.rate_per_second, creds.burst, len(authentic), refund
    )
    checked: list[tuple[int, Checked]] = []
    for n, (i, found) in enumerate(authentic):
        if n >= allowed:
            metrics.rate_limited(creds.name)
            limited = error(429, "rate_limited", f"tenant {creds.name!r} is over its rate limit; retry later")
            limited.headers["Retry-After"] = str(retry_after)
            limited.tenant = creds.name
            answers[i] = limited
            continue
        outcome = check_authentic(creds, found, received_at)
        if isinstance(outcome, Answer):
            answers[i] = outcome
        else:
            checked.append((i, outcome))
    for i, answer in _store(checked):
        answers[i] = answer
    assert all(answer is not None for answer in answers)
    return answers  # type: ignore[return-value]


def _store(checked: list[tuple[int, Checked]]) -> list[tuple[int, Answer]]:
    """Store the outcomes in one transaction (one commit); each item's answer as ``stored_answer`` gives it."""
    if not checked:
        return []
    try:
        with transaction.atomic():
            inserted = store.insert_many([c.record for _, c in checked])
            return [(i, stored_answer(c, found)) for (i, c), found in zip(checked, inserted, strict=True)]
    except DataError:
        pass
    # A value the database refuses is that item's 400 alone: store the others row by row, each under a savepoint.
    answers = []
    with transaction.atomic():
        for i, c in checked:
            try:
                with transaction.atomic():
                    answers.append((i, stored_answer(c, store.insert_first(c.record))))
            except DataError:
                log.warning("pcs_unstorable", extra={"event": "pcs_unstorable", "tenant": c.creds.name})
                answers.append((i, error(400, "pcs_unstorable", "a value in the PCS cannot be stored; check its "
                                         "strings and numbers")))  # fmt: skip
    return answers


def _keep_during_outage(
    known: TenantCredentials | None, name: str, body: bytes, kind: str, gate: ratelimit.Gate
) -> Answer:
    """The database is away: the batch is kept in the WAL for replay, within the byte budgets (the tenant's
    when this process knows it, else the one all unconfirmed names share), and answered 503."""
    if known is None:
        gate = ratelimit.admit_unverified(len(body))
        if gate.refusal is not None:
            return _wal_budget_spent(name, gate)
    elif gate.refusal == "wal_budget":
        return _wal_budget_spent(known.name, gate)
    try:
        wal.append(known.name if known else name, body, timezone.now(), kind)
    except wal.WalFull:
        return _wal_full(name)
    except wal.WalUnavailable:
        return _wal_unavailable(name)
    log.warning("database_unavailable", extra={"event": "database_unavailable"})
    return unavailable(KEPT_FOR_REPLAY, "database_unavailable")
