"""The business operations of ingest: ``submit_pcs`` (the request path) and ``get_outcome``.

Order matters (DESIGN.md section 3): size and rate limits and the durable WAL append come before any
parsing; the signature is checked before dedup; the verdict is computed by a pure function; the outcome
is stored by one ``INSERT ... ON CONFLICT DO NOTHING`` so that concurrent identical submissions produce
one row and identical answers. Views, the WAL replay and tests all call these functions.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, DataError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from agent_client.canonical import (
    V0_2,
    content_digest,
    protocol_of,
    signing_and_content_digests,
    signing_digest,
    signs_everything,
)
from agent_client.schema import PcsInvalid, parse_pcs
from calibration.conformal import SnapshotValues
from calibration.generations import unread_values
from calibration.services import current_snapshot, label_for
from ingest import metrics, ratelimit, store, wal
from ingest.signals import outcome_stored
from policy.params import NoActiveParams, active_params_memo
from policy.verification import Verdict, VerifyParamsValues, verify_pcs
from tenancy import keyring
from tenancy.config_cache import REQUEST_GENERATION_KEYS, REQUEST_GENERATIONS, request_generations
from tenancy.keyring import SignatureRejected, TenantCredentials
from tenancy.models import DEFAULT_TENANT

log = logging.getLogger("flk.ingest")
TENANT_HEADER_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class FollowUpFailed(OperationalError):
    """A follow-up write (review item, calibration bookkeeping) failed inside the outcome's transaction.

    An OperationalError, so that the request, the batch or the replay slice answers as for a database failure
    (503, the body kept in the WAL for replay) rather than blaming the PCS with 400 ``pcs_unstorable``.
    """


@dataclass
class Answer:
    """An HTTP answer as values: the view turns it into a response."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    # Set once the outcome is known, for logs and metrics; never the body.
    pcs_id: str = ""
    tenant: str = ""
    dedup: bool = False


def error(status: int, code: str, detail: str, **extra: Any) -> Answer:
    return Answer(status, {"detail": detail, "code": code, **extra})


DATABASE_UNAVAILABLE = "the database is unavailable, retry later"


def unavailable(detail: str, code: str) -> Answer:
    answer = error(503, code, detail)
    answer.headers["Retry-After"] = str(settings.FLK_RETRY_AFTER_SECONDS)
    return answer


def resolve_tenant(header: str | None) -> TenantCredentials | Answer:
    """The credentials of the tenant named by ``X-Tenant-Id`` (``default`` when absent), or an error."""
    name = DEFAULT_TENANT if header is None else header
    if not TENANT_HEADER_PATTERN.fullmatch(name):
        return Answer(400, {"X-Tenant-Id": ["must be 1–64 characters of A-Z a-z 0-9 _ . -"]})
    creds = keyring.credentials_memo.get(name)
    if creds is None:
        return error(401, "unknown_tenant", f"unknown tenant {name!r}")
    if not creds.enabled:
        return error(401, "tenant_disabled", f"tenant {name!r} is disabled")
    return creds


def is_json_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def submit_pcs(tenant_header: str | None, content_type: str | None, body: bytes, client: str = "") -> Answer:
    """POST /v1/pcs/submit after the size limit: pre-authentication limits, WAL, parse, signature, tenant
    rate, dedup, verify, store. ``client`` is the caller's address (``ingest.client_address``)."""
    if not is_json_content_type(content_type):
        return error(
            415, "unsupported_media_type", f"Unsupported media type {content_type or ''!r}: send application/json."
        )
    return admitted(tenant_header, body, client, lambda known, gate: _submit_json(tenant_header, body, known, gate))


def admitted(
    tenant_header: str | None,
    body: bytes,
    client: str,
    then: Callable[[TenantCredentials | None, ratelimit.Gate], Answer],
) -> Answer:
    """Step 2 of a submission (single or batch): the pre-authentication limits, then ``then(known, gate)`` with
    the generations the request pins; ``known`` is the tenant as this process knows it, if it does."""
    name = DEFAULT_TENANT if tenant_header is None else tenant_header
    known = keyring.credentials_memo.peek(name) if TENANT_HEADER_PATTERN.fullmatch(name) else None
    if known is not None and not known.enabled:
        known = None
    # One Redis round trip: the client address's bucket (a token per request, a batch's too), the WAL byte
    # budgets and a look at the tenant's failure bucket (for a tenant this process knows), and the generations
    # the request pins.
    gate = ratelimit.admit(client or "unknown", known.name if known else None, len(body), REQUEST_GENERATION_KEYS)
    if gate.refusal == "address":
        metrics.preauth_refused("address")
        answer = error(429, "rate_limited", "too many requests from this address; retry later")
        answer.headers["Retry-After"] = str(gate.retry_after)
        return answer
    shared = gate.values if gate.values is not None else unread_values(REQUEST_GENERATIONS)
    with request_generations(shared):
        return then(known, gate)


def _submit_json(
    tenant_header: str | None, body: bytes, known: TenantCredentials | None, gate: ratelimit.Gate
) -> Answer:
    try:
        creds = store.reusing_connection(resolve_tenant, tenant_header)
    except (OperationalError, InterfaceError):
        if known is None:
            return _keep_unverified(tenant_header or DEFAULT_TENANT, body)
        # A tenant known from before the outage: its bodies are authenticated first (its keys are in hand) and
        # only signed ones are kept in the WAL, for replay to store once the database is back.
        return _submit_during_outage(known, body, gate)
    passed = tenant_gate(creds, known, gate, len(body))
    if isinstance(passed, Answer):
        return passed
    assert not isinstance(creds, Answer)
    gate = passed
    metrics.ingested(creds.name)
    signed = _SignedHook(creds, gate.charged_bytes)
    try:
        received_at = timezone.now()
        if gate.check_first:
            # The tenant's failure bucket is empty: junk is refused before it costs a disk write, signed bodies
            # are made durable before their outcome is stored (nothing is accepted without the WAL record).
            checked = store.reusing_connection(check_body, creds, body, received_at, signed)
            if isinstance(checked, Answer):
                return signed.finish(checked)
            wal.append(creds.name, body, received_at)
            return store.reusing_connection(_store_checked, checked)
        # Step 3: the raw body is on disk before anything in it is trusted; without that, nothing is accepted.
        wal.append(creds.name, body, received_at)
        signed.stored_bytes = True
        return signed.finish(store.reusing_connection(process_body, creds, body, received_at, signed))
    except wal.WalUnavailable as exc:
        signed.finish(None)
        if isinstance(exc, wal.WalFull):
            return _wal_full(creds.name)
        return _wal_unavailable(creds.name)
    except DataError:
        # A value the schema let through but the database refuses (parse_pcs already refuses the known
        # cases). The client's data caused it: 400, and the database's message is not logged, as it
        # quotes the body.
        log.warning("pcs_unstorable", extra={"event": "pcs_unstorable", "tenant": tenant_header or DEFAULT_TENANT})
        return error(400, "pcs_unstorable", "a value in the PCS cannot be stored; check its strings and numbers")
    except (OperationalError, InterfaceError):
        log.warning("database_unavailable", extra={"event": "database_unavailable"})
        return unavailable(
            "the database is unavailable; the PCS was kept for replay, retry later", "database_unavailable"
        )
    except NoActiveParams:
        log.error("no_active_verify_params")
        return unavailable("no VerifyParams version is active; an admin must activate one", "no_active_params")


def tenant_gate(
    creds: TenantCredentials | Answer, known: TenantCredentials | None, gate: ratelimit.Gate, size: int
) -> Answer | ratelimit.Gate:
    """Step 2's tenant part once the tenant is resolved: its refusal (unknown tenant, WAL budget spent), or the
    gate a body of ``size`` bytes passed."""
    if isinstance(creds, Answer):
        if gate.charged_bytes and known is not None:  # the copy in hand was out of date
            ratelimit.give_back_wal_bytes(known.name, gate.charged_bytes)
        return creds
    if known is None:
        gate = ratelimit.admit_tenant(creds.name, size)
    if gate.refusal == "wal_budget":
        return _wal_budget_spent(creds.name, gate)
    return gate


class _SignedHook:
    """Step 5's second half, called by ``check_body`` once the signature verified: the tenant's own bucket.

    Only requests that get this far spend the tenant's rate, and the WAL bytes their body spent come back.
    ``finish`` settles a request that never got here: a failed schema or signature charges the tenant's
    failure bucket (and gives the bytes back when the body was not stored).
    """

    def __init__(self, creds: TenantCredentials, charged_bytes: int):
        self.creds, self.charged_bytes = creds, charged_bytes
        self.called = False
        self.answer: Answer | None = None
        self.stored_bytes = False

    def __call__(self) -> Answer | None:
        if self.called:  # work run again on a new connection (store.reusing_connection): charged once
            return self.answer
        self.called = True
        self.answer = self._charge()
        return self.answer

    def _charge(self) -> Answer | None:
        limit = ratelimit.authenticated(self.creds.name, self.creds.rate_per_second, self.creds.burst,
                                        self.charged_bytes)  # fmt: skip
        if limit.allowed:
            return None
        metrics.rate_limited(self.creds.name)
        answer = error(429, "rate_limited", f"tenant {self.creds.name!r} is over its rate limit; retry later")
        answer.headers["Retry-After"] = str(limit.retry_after)
        answer.tenant = self.creds.name
        return answer

    def finish(self, answer: Answer | None) -> Answer | None:
        if not self.called:
            if answer is not None and answer.status in (400, 401):
                ratelimit.authentication_failed(self.creds.name, 0 if self.stored_bytes else self.charged_bytes)
            elif self.charged_bytes and not self.stored_bytes:  # nothing written: the budget is not spent
                ratelimit.give_back_wal_bytes(self.creds.name, self.charged_bytes)
        return answer


def _store_checked(checked: Checked) -> Answer:
    """Steps 8 and 9 for one checked PCS: its outcome, then the follow-up work that outcome announces.

    An outcome that waits for a label (not accepted, or drawn for the audit) is inserted in one transaction
    with its review item. In autocommit the outcome would commit first, and the database lost or the worker
    killed before the review item's insert would leave the PCS stored and answered with no item, so no
    reviewer would ever see it (found by ``make chaos``). Accepted outcomes, the common case, write no
    follow-up row and skip the transaction's round trips; a batch or a replay slice is already one
    transaction.
    """
    record = checked.record
    if connection.in_atomic_block or (record.decision == "accept" and not record.audit_sample):
        return stored_answer(checked, store.insert_first(record))
    with transaction.atomic():
        return stored_answer(checked, store.insert_first(record))


def _submit_during_outage(creds: TenantCredentials, body: bytes, gate: ratelimit.Gate) -> Answer:
    if gate.refusal == "wal_budget":
        return _wal_budget_spent(creds.name, gate)
    received_at = timezone.now()
    signed = _SignedHook(creds, gate.charged_bytes)
    try:
        authentic = authenticate_body(creds, body, received_at, on_signed=signed)
    except (OperationalError, InterfaceError, NoActiveParams):
        authentic = None
    if isinstance(authentic, Answer):
        return signed.finish(authentic)
    try:
        wal.append(creds.name, body, received_at)
    except wal.WalFull:
        return _wal_full(creds.name)
    except wal.WalUnavailable:
        return _wal_unavailable(creds.name)
    log.warning("database_unavailable", extra={"event": "database_unavailable"})
    return unavailable("the database is unavailable; the PCS was kept for replay, retry later", "database_unavailable")


def _keep_unverified(name: str, body: bytes) -> Answer:
    """The database is away and this process never saw the tenant: keep the body for replay, within the one
    byte budget that every such unconfirmed name shares, so made-up names cannot fill the WAL."""
    gate = ratelimit.admit_unverified(len(body))
    if gate.refusal is not None:
        return _wal_budget_spent(name, gate)
    try:
        wal.append(name, body, timezone.now())
    except wal.WalFull:
        return _wal_full(name)
    except wal.WalUnavailable:
        return _wal_unavailable(name)
    log.warning("database_unavailable", extra={"event": "database_unavailable"})
    return unavailable("the database is unavailable; the PCS was kept for replay, retry later", "database_unavailable")


def _wal_budget_spent(tenant: str, gate: ratelimit.Gate) -> Answer:
    metrics.preauth_refused("wal_budget")
    answer = unavailable("the inbox WAL budget is spent; nothing was accepted, retry later", "wal_budget")
    answer.headers["Retry-After"] = str(max(gate.retry_after, settings.FLK_RETRY_AFTER_SECONDS))
    answer.tenant = tenant
    return answer


def _wal_full(tenant: str) -> Answer:
    log.error("wal_full", extra={"event": "wal_full", "tenant": tenant})
    metrics.preauth_refused("wal_full")
    answer = unavailable("the inbox WAL's disk is nearly full; nothing was accepted, retry later", "wal_full")
    answer.tenant = tenant
    return answer


def _wal_unavailable(tenant: str) -> Answer:
    log.error("wal_unavailable", extra={"event": "wal_unavailable", "tenant": tenant})
    answer = unavailable("the inbox WAL cannot be written; nothing was accepted, retry later", "wal_unavailable")
    answer.tenant = tenant
    return answer


@dataclass
class Checked:
    """A body that passed steps 4–8 (schema, signature, verification): its outcome, ready to be stored."""

    creds: TenantCredentials
    pcs: dict[str, Any]
    verdict: Verdict
    params: VerifyParamsValues
    record: store.NewRecord


def process_body(
    creds: TenantCredentials, body: bytes, received_at: datetime, on_signed: Callable[[], Answer | None] | None = None
) -> Answer:
    """Steps 4–9 for one body already made durable: shared by the request path and the WAL replay."""
    checked = check_body(creds, body, received_at, on_signed)
    if isinstance(checked, Answer):
        return checked
    return _store_checked(checked)


def process_bodies(bodies: list[tuple[TenantCredentials, bytes, datetime]]) -> list[Answer]:
    """``process_body`` for many bodies at once (the WAL replay): the outcomes share multi-row inserts."""
    checked = [check_body(*item) for item in bodies]
    ready = [c.record for c in checked if isinstance(c, Checked)]
    results = iter(store.insert_many(ready))
    return [c if isinstance(c, Answer) else stored_answer(c, next(results)) for c in checked]


@dataclass(frozen=True)
class Authentic:
    """A body whose schema and signature passed (steps 4 and 5)."""

    pcs: dict[str, Any]
    digest: bytes
    key_id: str
    content_digest: str = ""  # 0.2: computed with the signing digest


def authenticate_body(
    creds: TenantCredentials, body: bytes, received_at: datetime, on_signed: Callable[[], Answer | None] | None = None
) -> Answer | Authentic:
    """Steps 4–5: parse and check the signature; then ``on_signed`` (the request path's tenant bucket),
    whose Answer, if any, refuses the body."""
    try:
        pcs = parse_pcs(body)
    except PcsInvalid as exc:
        return Answer(400, exc.errors, tenant=creds.name)

    content = ""
    if signs_everything(pcs):
        digest, content = signing_and_content_digests(pcs)
    else:
        digest = signing_digest(pcs)
    try:
        key_id = keyring.check_signature(creds, digest, pcs.get("sig"), received_at)
    except SignatureRejected as exc:
        log.info("signature_rejected", extra={"event": "signature_rejected", "pcs_id": pcs["pcs_id"],
                                              "tenant": creds.name, "code": exc.code})  # fmt: skip
        metrics.signature_failed(creds.name, exc.code)
        refused = error(401, exc.code, exc.detail, key_ids=list(exc.key_ids), pcs_id=pcs["pcs_id"])
        refused.pcs_id, refused.tenant = pcs["pcs_id"], creds.name  # for the request log line
        return refused
    if on_signed is not None and (refused := on_signed()) is not None:
        return refused
    return Authentic(pcs, digest, key_id, content)


def check_body(
    creds: TenantCredentials, body: bytes, received_at: datetime, on_signed: Callable[[], Answer | None] | None = None
) -> Answer | Checked:
    """Steps 4–8: parse, signature, verification; an error Answer, or the outcome to store."""
    authentic = authenticate_body(creds, body, received_at, on_signed)
    if isinstance(authentic, Answer):
        return authentic
    return check_authentic(creds, authentic, received_at)


def check_authentic(creds: TenantCredentials, authentic: Authentic, received_at: datetime) -> Answer | Checked:
    """Steps 5 (version) to 8 for a body whose schema and signature passed: the version refusal, or the
    verdict and the outcome to store. ``check_body`` and the batch path (``ingest.batch``) share it."""
    pcs, digest, key_id = authentic.pcs, authentic.digest, authentic.key_id
    protocol = protocol_of(pcs["version"])  # the schema refuses every version but 0.1.x and 0.2.x
    assert protocol is not None
    refused_version = version_refusal(creds, pcs, protocol)
    if refused_version is not None:
        return refused_version
    # What a replay must repeat (DESIGN.md section 6): under 0.2 its content, every field but sig, attempt
    # and sent_at (a retry signs again); under 0.1 its signed subset. A 0.1 and a 0.2 PCS never match: only
    # the content serialisation holds the "version" key.
    replay_digest = (authentic.content_digest or content_digest(pcs)) if protocol == V0_2 else digest.hex()

    params = active_params_memo.get("active")
    started = time.perf_counter()
    # The tenant's calibration snapshot comes from a per-process copy: no query on the warm path.
    snapshot = current_snapshot(creds.name)
    verdict = verify_pcs(pcs, params, snapshot)
    metrics.verify_observed(time.perf_counter() - started)
    record = new_record(
        creds, pcs, replay_digest, key_id, params, verdict, received_at, audit_probability(params, snapshot)
    )
    return Checked(creds, pcs, verdict, params, record)


def version_refusal(creds: TenantCredentials, pcs: dict[str, Any], protocol: str) -> Answer | None:
    """Count a signed PCS under its protocol version; refuse it (403) when the tenant requires a later one.

    Checked after the signature, so that the count holds only the tenant's own agents, and a PCS whose
    ``version`` was changed on the way gets 401 like any other change.
    """
    metrics.pcs_version(creds.name, protocol)
    if not keyring.below_minimum_version(creds, protocol):
        return None
    required = creds.min_pcs_version
    log.info("pcs_version_refused", extra={"event": "pcs_version_refused", "pcs_id": pcs["pcs_id"],
                                           "tenant": creds.name, "version": protocol})  # fmt: skip
    refused = error(
        403,
        f"pcs_version_{required}_required",
        f"tenant {creds.name!r} accepts PCS version {required} or later; this PCS is version {pcs['version']}: "
        "upgrade the agent (flk-agent emits 0.2 by default)",
        version=pcs["version"],
        required_version=required,
        pcs_id=pcs["pcs_id"],
    )
    refused.pcs_id, refused.tenant = pcs["pcs_id"], creds.name
    return refused


def audit_probability(params: VerifyParamsValues, snapshot: SnapshotValues | None) -> float:
    """The probability with which a PCS of this tenant is drawn for the audit sample now.

    ``audit_rate``, or the higher ``bootstrap_audit_rate`` while the tenant's own calibration set is under n_min
    (so a new tenant reaches n_min in days, not months). It depends on the tenant's state, never on the PCS: the
    draw stays independent of the verdict, which is what makes the benign audit labels exchangeable.
    """
    own_ready = snapshot is not None and snapshot.source == "own" and snapshot.n >= params.n_min
    return params.audit_rate if own_ready else max(params.audit_rate, params.bootstrap_audit_rate)


def first_response(pcs: dict[str, Any], verdict: Verdict, params: VerifyParamsValues) -> dict[str, Any]:
    return {
        "pcs_id": pcs["pcs_id"],
        "accepted": verdict.accepted,
        "decision": verdict.decision,
        "reasons": [c.as_dict() for c in verdict.failed_checks],
        "recomputed": {"D_hat": verdict.recomputed_d_hat, "regime": verdict.regime, "budget": verdict.budget},
        "params_version": params.version,
        "score": verdict.score,
        "conformal": verdict.conformal.as_dict() if verdict.conformal is not None else None,
        "dedup": False,
    }


def new_record(
    creds: TenantCredentials,
    pcs: dict[str, Any],
    replay_digest: str,
    key_id: str,
    params: VerifyParamsValues,
    verdict: Verdict,
    received_at: datetime,
    audit_probability: float = 0.0,
) -> store.NewRecord:
    """The outcome row of a verified PCS, with the answer its first delivery gets.

    ``replay_digest`` is what a later delivery of the same ``pcs_id`` must repeat to be a replay (the
    ``signed_digest`` column): the content digest under 0.2, the signed subset's digest under 0.1.
    """
    return store.NewRecord(
        tenant_id=creds.tenant_id,
        pcs_id=pcs["pcs_id"],
        shard_id=pcs["shard_id"],
        epoch=pcs["epoch"],
        attempt=pcs.get("attempt", 1),
        signed_digest=replay_digest,
        key_id=key_id,
        body=pcs,
        d_hat=pcs["D_hat"],
        coh_star=pcs["coh_star"],
        r=pcs["r"],
        budget=pcs["budget"],
        regime=pcs["regime"],
        recomputed_d_hat=verdict.recomputed_d_hat,
        score=verdict.score,
        # The audit sample is drawn whatever the verdict: accepted, escalated and rejected PCS alike. Benign labels
        # of a sample drawn among accepted PCS only would be the benign scores cut at the current threshold, and
        # each recalibration on them would lower the threshold further (DESIGN.md section 7).
        audit_sample=random.random() < audit_probability,  # sampling, not a secret
        audit_probability=audit_probability,
        status_code=verdict.http_status,
        decision=verdict.decision,
        response=first_response(pcs, verdict, params),
        params_version=params.version,
        received_at=received_at,
        verified_at=timezone.now(),
    )


def stored_answer(checked: Checked, inserted: store.Inserted) -> Answer:
    """Step 9 once the insert ran: the first answer if this insert won, else the stored one (or a 409)."""
    creds, pcs, verdict, record = checked.creds, checked.pcs, checked.verdict, checked.record
    if isinstance(inserted, int):
        metrics.outcome(creds.name, verdict.decision)
        _announce_outcome(creds, inserted, pcs, verdict, checked.params, record.audit_sample, record.received_at)
        return Answer(verdict.http_status, record.response, pcs_id=pcs["pcs_id"], tenant=creds.name)
    return replay_answer(creds, pcs["pcs_id"], record.signed_digest, inserted)


def replay_answer(
    creds: TenantCredentials, pcs_id: str, replay_digest: str, stored: store.StoredOutcome | None = None
) -> Answer:
    """The stored answer for a replay (``dedup: true``), or 409 when the PCS differs from the stored one.

    Differs: in its content (0.2: any field but sig, attempt and sent_at), in its signed subset (0.1), or in its
    version.
    """
    stored = stored or store.stored_outcome(creds.tenant_id, pcs_id)
    if stored is None:  # only if the row was purged between the insert and this read
        return unavailable("the stored outcome changed during the request; retry", "dedup_race")
    if stored.signed_digest != replay_digest:
        return error(
            409,
            "pcs_id_conflict",
            "a different PCS with this pcs_id was already stored (0.2: another content, any field but sig, "
            "attempt and sent_at; 0.1: another signed subset); a replay must be the same PCS",
            pcs_id=pcs_id,
        )
    metrics.dedup_hit(creds.name)
    return Answer(stored.status_code, {**stored.response, "dedup": True}, pcs_id=pcs_id, tenant=creds.name, dedup=True)


def _announce_outcome(
    creds: TenantCredentials,
    record_id: int,
    pcs: dict[str, Any],
    verdict: Verdict,
    params: VerifyParamsValues,
    audit_sample: bool,
    received_at: datetime,
) -> None:
    # Step 9 (metrics and follow-up work) never fails the request: receivers' errors are only logged.
    for receiver, result in outcome_stored.send_robust(
        sender=store.NewRecord, record_id=record_id, tenant_id=creds.tenant_id, tenant=creds.name,
        pcs_id=pcs["pcs_id"], shard_id=pcs["shard_id"], received_at=received_at, decision=verdict.decision,
        verdict=verdict, params=params, audit_sample=audit_sample, score=verdict.score,
    ):  # fmt: skip
        if isinstance(result, Exception):
            log.error("outcome_follow_up_failed", extra={"event": "outcome_follow_up_failed",
                      "pcs_id": pcs["pcs_id"], "receiver": getattr(receiver, "__name__", str(receiver))},
                      exc_info=result)  # fmt: skip
            if isinstance(result, DatabaseError) and connection.in_atomic_block:
                # The outcome was inserted in a transaction still open (a batch, a replay slice) that the failed
                # statement broke or whose connection is gone: at its end the outcome would be rolled back
                # without a word while its answer says stored (a batch acknowledged and lost, found under a
                # database crash). Fail the transaction, so its owner answers as for any database failure.
                if isinstance(result, DataError):
                    # Our own write refused a value: not the PCS's fault, so never its 400 pcs_unstorable.
                    raise FollowUpFailed("a follow-up write of a stored outcome failed") from result
                raise result


OUTCOME_UNAUTHORIZED = (
    "reading outcomes needs 'Authorization: Bearer <API key>' with a key of the tenant named in X-Tenant-Id"
)


def get_outcome(tenant_header: str | None, pcs_id: str, authorization: str | None = None) -> Answer:
    """GET /v1/pcs/<pcs_id>: the stored outcome of the tenant's PCS, for a holder of one of its API keys.

    Unknown tenant, disabled tenant, missing key and wrong key get one and the same 401 (``unauthorized``):
    the answer never says whether a tenant exists.
    """
    answer = _outcome_answer(tenant_header, pcs_id, authorization)
    answer.headers["Cache-Control"] = "no-store"  # an outcome is the tenant's: no browser or proxy keeps it
    return answer


def _outcome_answer(tenant_header: str | None, pcs_id: str, authorization: str | None) -> Answer:
    name = DEFAULT_TENANT if tenant_header is None else tenant_header
    if not TENANT_HEADER_PATTERN.fullmatch(name):
        return Answer(400, {"X-Tenant-Id": ["must be 1–64 characters of A-Z a-z 0-9 _ . -"]})
    try:
        creds = keyring.credentials_memo.get(name)
        if not keyring.may_read_outcomes(creds, authorization):
            refused = error(401, "unauthorized", OUTCOME_UNAUTHORIZED)
            refused.headers["WWW-Authenticate"] = 'Bearer realm="flk"'
            return refused
        assert creds is not None
        stored = store.stored_outcome(creds.tenant_id, pcs_id)
    except (OperationalError, InterfaceError):
        return unavailable(DATABASE_UNAVAILABLE, "database_unavailable")
    if stored is None:
        return error(404, "not_found", "no PCS with this pcs_id for this tenant")
    label = label_for(creds.name, pcs_id)
    return Answer(200, {**stored.response, "status_code": stored.status_code, "dedup": False, "label": label},
                  pcs_id=pcs_id, tenant=creds.name)  # fmt: skip
