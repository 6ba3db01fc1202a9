"""The business operations of calibration: labels in, snapshots out, and the monitors.

Views, Celery tasks, the ``recalibrate`` command and the review queue call these functions; none of them
re-implements one. Calibration never imports ingest or review: tenants are names, scores are values, and
what it needs from VerifyParams comes through the provider named by ``FLK_CALIBRATION_PARAMS_PROVIDER``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from calibration import conformal
from calibration.generations import Generation, ProcessMemo
from calibration.models import (
    GLOBAL_SET,
    CalibrationLabel,
    CalibrationSnapshot,
    DriftReport,
    ExpiredAudit,
    Label,
    MiscoverageReport,
    Provenance,
    Source,
)
from calibration.scoring import ScoreFormula

log = logging.getLogger("flk.calibration")
GENERATION_KEY = "flk:calibration-generation"
PENDING_KEY = "flk:calibration-pending:{tenant}"


@dataclass(frozen=True)
class CalibrationParams:
    """What calibration needs from the active VerifyParams version."""

    delta: float = 0.05
    reject_delta: float = 0.005
    n_min: int = 100
    audit_rate: float = 0.02
    params_version: int = 0
    formula: ScoreFormula = field(default_factory=ScoreFormula)


def params_provider() -> Callable[[], CalibrationParams]:
    return import_string(getattr(settings, "FLK_CALIBRATION_PARAMS_PROVIDER", "ingest.params.calibration_params"))


def traffic_scores_provider() -> Callable[[str, datetime, int], list[float]]:
    return import_string(getattr(settings, "FLK_CALIBRATION_TRAFFIC_PROVIDER", "ingest.params.recent_traffic_scores"))


# --- Labels ------------------------------------------------------------------------------------------


def record_label(
    *,
    tenant: str,
    pcs_id: str,
    label: str,
    provenance: str,
    signals: dict[str, float] | None = None,
    score: float | None = None,
    labelled_at: datetime | None = None,
    inclusion_probability: float | None = None,
    decision: str = "",
    p_value: float | None = None,
    flagged: bool | None = None,
    snapshot_n: int | None = None,
    delta: float | None = None,
    received_at: datetime | None = None,
    origin: str = "",
) -> None:
    """Store a label of one PCS (a relabel replaces the previous one) and schedule the tenant's recalibration.

    ``signals`` (D_hat, coh_star, r) let every later recalibration recompute the score under the parameters
    active then; a label given only a ``score`` is taken to be scored under the active formula and is left out
    of snapshots once the formula changes. The ingest-time facts (inclusion probability, decision, p-value,
    whether the conformal step flagged it, the level and calibration size that decided it) feed the monitors.
    """
    if label not in Label.values:
        raise ValueError(f"label must be one of {Label.values}, got {label!r}")
    if provenance not in Provenance.values:
        raise ValueError(f"provenance must be one of {Provenance.values}, got {provenance!r}")
    if inclusion_probability is not None and not 0.0 < inclusion_probability <= 1.0:
        raise ValueError(f"inclusion_probability must be within (0, 1], got {inclusion_probability!r}")
    formula = params_provider()().formula
    if signals is not None:
        score = formula.score(signals)
    row = CalibrationLabel(
        tenant=tenant,
        pcs_id=pcs_id,
        score=score,
        formula_key=formula.key if score is not None else "",
        signals=signals,
        label=label,
        provenance=provenance,
        inclusion_probability=inclusion_probability,
        decision=decision,
        p_value=p_value,
        flagged=flagged,
        snapshot_n=snapshot_n,
        delta=delta,
        received_at=received_at,
        origin=origin[:200],
        labelled_at=labelled_at or timezone.now(),
    )
    # INSERT ... ON CONFLICT (tenant, pcs_id) DO UPDATE: two reviewers labelling at once leave one row, the
    # last writer's, without a read-then-write race.
    CalibrationLabel.objects.bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["tenant", "pcs_id"],
        update_fields=[f for f in LABEL_FIELDS if f not in ("tenant", "pcs_id")],
    )
    log.info("calibration_label_recorded", extra={"event": "calibration_label_recorded", "tenant": tenant,
                                                  "pcs_id": pcs_id, "label": label, "provenance": provenance})  # fmt: skip
    transaction.on_commit(lambda: schedule_recalibration(tenant), robust=True)


LABEL_FIELDS: tuple[str, ...] = (
    "tenant", "pcs_id", "score", "formula_key", "signals", "label", "provenance", "inclusion_probability",
    "decision", "p_value", "flagged", "snapshot_n", "delta", "received_at", "origin", "labelled_at",
)  # fmt: skip


def withdraw_label(*, tenant: str, pcs_id: str) -> None:
    """Remove the label of one PCS (a reviewer's undo) and schedule the tenant's recalibration."""
    deleted, _ = CalibrationLabel.objects.filter(tenant=tenant, pcs_id=pcs_id).delete()
    if deleted:
        log.info("calibration_label_withdrawn", extra={"event": "calibration_label_withdrawn", "tenant": tenant,
                                                       "pcs_id": pcs_id})  # fmt: skip
        transaction.on_commit(lambda: schedule_recalibration(tenant), robust=True)


def label_for(tenant: str, pcs_id: str) -> dict[str, Any] | None:
    """The label of one PCS for GET /v1/pcs/<pcs_id>: {"label", "provenance", "labelled_at"} or None."""
    row = (
        CalibrationLabel.objects.filter(tenant=tenant, pcs_id=pcs_id)
        .values("label", "provenance", "labelled_at")
        .first()
    )
    if row is None:
        return None
    return {"label": row["label"], "provenance": row["provenance"], "labelled_at": row["labelled_at"].isoformat()}


def schedule_recalibration(tenant: str) -> None:
    """Enqueue one recalibration of ``tenant`` for a burst of labels (debounced through the shared cache)."""
    from calibration.tasks import recalibrate

    debounce = float(getattr(settings, "FLK_CALIBRATION_DEBOUNCE_SECONDS", 10.0))
    try:
        # cache.add is atomic (SET NX on Redis): the first label of a burst wins and enqueues; later labels
        # find the key and rely on that task, which clears the key before reading the labels.
        first = cache.add(PENDING_KEY.format(tenant=tenant), "1", timeout=max(1, int(debounce * 6)))
    except Exception:  # the cache is down: enqueue anyway, recalibration is idempotent
        log.warning("calibration_debounce_unavailable", exc_info=True)
        first = True
    if not first:
        return
    try:
        recalibrate.apply_async(kwargs={"tenant": tenant}, countdown=debounce)
    except Exception:
        # A label is never lost for want of a broker: it is stored, and the scheduled recalibration picks it
        # up. Clearing the key lets the next label try to enqueue again.
        log.warning("calibration_enqueue_failed", extra={"event": "calibration_enqueue_failed", "tenant": tenant},
                    exc_info=True)  # fmt: skip
        clear_pending(tenant)


def clear_pending(tenant: str) -> None:
    try:
        cache.delete(PENDING_KEY.format(tenant=tenant))
    except Exception:
        log.warning("calibration_debounce_unavailable", exc_info=True)


# --- Audit label completion ---------------------------------------------------------------------------


def waiting_audit_provider() -> Callable[[str | None], dict[str, tuple[int, datetime | None]]]:
    return import_string(getattr(settings, "FLK_CALIBRATION_AUDIT_PROVIDER", "ingest.params.waiting_audit_samples"))


def expire_audits(samples: Sequence[tuple[str, str]], *, reason: str = "", expired_by: str = "") -> int:
    """Give up the audit samples (tenant, pcs_id) without a label; returns how many were not expired before.

    An explicit decision, never a side effect: the dedup-TTL purge may then remove their stored outcomes, and
    ``audit_completion`` counts them as expired, not as labelled.
    """
    wanted = set(samples)
    known = Q()
    for name, pcs_id in wanted:
        known |= Q(tenant=name, pcs_id=pcs_id)
    # Only the returned count reads before writing; the rows themselves rely on the constraint below.
    already = set(ExpiredAudit.objects.filter(known).values_list("tenant", "pcs_id")) if wanted else set()
    rows = [ExpiredAudit(tenant=t, pcs_id=p, reason=reason[:200], expired_by=expired_by[:150]) for t, p in wanted]
    # ON CONFLICT DO NOTHING on (tenant, pcs_id): expiring twice, or from two admin pages at once, keeps one row.
    ExpiredAudit.objects.bulk_create(rows, ignore_conflicts=True)
    expired = len(wanted - already)
    log.warning("calibration_audit_expired", extra={"event": "calibration_audit_expired", "count": expired,
                "tenants": sorted({t for t, _p in samples}), "expired_by": expired_by, "reason": reason})  # fmt: skip
    return expired


@dataclass(frozen=True)
class AuditCompletion:
    """How a tenant's audit samples fared: labelled, expired without a label, or still waiting for one."""

    tenant: str
    labelled: int
    expired: int
    waiting: int
    oldest_waiting_seconds: float | None  # age of the oldest audit sample still waiting; None when none waits

    @property
    def drawn(self) -> int:
        return self.labelled + self.expired + self.waiting

    @property
    def labelled_share(self) -> float | None:
        """Labelled audit samples among those drawn: below 1 the audit sample is incomplete, and labels that come
        back quickly (the easy PCS) would weigh more than the rest."""
        return self.labelled / self.drawn if self.drawn else None


def audit_completion(tenant: str | None = None) -> dict[str, AuditCompletion]:
    """Per tenant (or for ``tenant`` alone), its audit samples labelled, expired and waiting, and the oldest wait.

    Labels and expiries are calibration's; the audit samples still waiting are stored outcomes, counted by the
    provider named by ``FLK_CALIBRATION_AUDIT_PROVIDER`` (calibration never reads ingest's tables itself).
    """
    labels = CalibrationLabel.objects.filter(provenance=Provenance.AUDIT)
    expiries = ExpiredAudit.objects.all()
    if tenant is not None:
        labels, expiries = labels.filter(tenant=tenant), expiries.filter(tenant=tenant)
    labelled = dict(labels.values_list("tenant").annotate(n=Count("id")).values_list("tenant", "n"))
    expired = dict(expiries.values_list("tenant").annotate(n=Count("id")).values_list("tenant", "n"))
    waiting = waiting_audit_provider()(tenant)
    now = timezone.now()
    names = set(labelled) | set(expired) | set(waiting) | ({tenant} if tenant is not None else set())
    report = {}
    for name in sorted(names):
        count, oldest = waiting.get(name, (0, None))
        report[name] = AuditCompletion(
            tenant=name,
            labelled=labelled.get(name, 0),
            expired=expired.get(name, 0),
            waiting=count,
            oldest_waiting_seconds=(now - oldest).total_seconds() if oldest is not None else None,
        )
    return report


# --- Recalibration ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecalibrationResult:
    tenant: str
    n: int
    n_min: int
    old_threshold: float | None
    new_threshold: float
    source: str  # "own" when the tenant's n >= n_min, else "global" (the fallback set answers for it)
    snapshot_id: int | None
    changed: bool
    dry_run: bool
    skipped: int = 0  # benign audit labels left out: no signals to rescore them under the active formula


def _window_start() -> datetime:
    return timezone.now() - timedelta(days=float(getattr(settings, "FLK_CALIBRATION_WINDOW_DAYS", 180)))


def calibration_labels(tenant: str) -> list[tuple[str, str, float | None, str, dict[str, float] | None]]:
    """The labels that form ``tenant``'s quantile: benign audit samples within the window, newest first, capped.

    Only audit samples: they are drawn with a known probability whatever the verdict, so their benign scores
    are exchangeable with a new benign PCS. Labels of escalated PCS are the top of the benign distribution and
    a set built from accepted PCS only is the distribution cut at the current threshold; either would break the
    guarantee. ``GLOBAL_SET`` takes every tenant's audit samples. Rows are (tenant, pcs_id, score,
    formula_key, signals).
    """
    query = CalibrationLabel.objects.filter(
        label=Label.BENIGN, provenance=Provenance.AUDIT, labelled_at__gte=_window_start()
    )
    if tenant != GLOBAL_SET:
        query = query.filter(tenant=tenant)
    max_size = int(getattr(settings, "FLK_CALIBRATION_MAX_SIZE", 5000))
    # Oldest out first: the newest max_size labels form the set.
    rows = query.order_by("-labelled_at", "-id").values_list("tenant", "pcs_id", "score", "formula_key", "signals")
    return list(rows[:max_size])


def calibration_scores(tenant: str, formula: ScoreFormula) -> tuple[list[tuple[str, str, float]], int]:
    """The (tenant, pcs_id, score) of ``tenant``'s quantile, every score under ``formula``; and how many were left out.

    A label's score is recomputed from its signals; a label without signals counts only if it was scored under
    this very formula. The skipped count says how many labels a formula change cost.
    """
    scored: list[tuple[str, str, float]] = []
    skipped = 0
    for name, pcs_id, score, key, signals in calibration_labels(tenant):
        if signals:
            scored.append((name, pcs_id, formula.score(signals)))
        elif score is not None and key == formula.key:
            scored.append((name, pcs_id, float(score)))
        else:
            skipped += 1
    return scored, skipped


def _content_hash(rows: Sequence[tuple[str, str, float]]) -> str:
    digest = hashlib.sha256()
    for tenant, pcs_id, score in sorted(rows):
        digest.update(f"{tenant}|{pcs_id}|{score!r}\n".encode())
    return digest.hexdigest()


def _latest_row(tenant: str) -> CalibrationSnapshot | None:
    return CalibrationSnapshot.objects.filter(tenant=tenant).order_by("-id").first()


def recalibrate_tenant(
    tenant: str,
    *,
    delta: float,
    n_min: int,
    params_version: int,
    formula: ScoreFormula | None = None,
    dry_run: bool = False,
) -> RecalibrationResult:
    """Rebuild the snapshot of ``tenant`` (or of ``GLOBAL_SET``) from its labels, every score under ``formula``.

    ``formula`` defaults to the active parameters' score formula. Idempotent: when the scores, delta, n_min,
    formula and params version are those of the latest snapshot, nothing is written. The new snapshot is
    announced to every process after the commit.
    """
    conformal.conformal_rank(0, delta)  # validates delta before anything is read
    formula = formula or params_provider()().formula
    rows, skipped = calibration_scores(tenant, formula)
    scores = sorted(float(score) for _t, _p, score in rows)
    threshold = conformal.conformal_threshold(scores, delta)
    content_hash = _content_hash(rows)
    latest = _latest_row(tenant)
    old_threshold = None
    if latest is not None:
        old_threshold = float("inf") if latest.threshold is None else latest.threshold
    source = Source.OWN if tenant == GLOBAL_SET or len(scores) >= n_min else Source.GLOBAL
    unchanged = latest is not None and (
        latest.content_hash == content_hash
        and latest.delta == delta
        and latest.n_min == n_min
        and latest.params_version == params_version
        and latest.formula_key == formula.key
    )
    snapshot_id = latest.pk if latest is not None else None
    if not dry_run and not unchanged:
        row = CalibrationSnapshot.objects.create(
            tenant=tenant,
            source=Source.OWN,
            n=len(scores),
            n_min=n_min,
            delta=delta,
            threshold=None if threshold == float("inf") else threshold,
            scores=scores,
            content_hash=content_hash,
            params_version=params_version,
            formula=formula.as_dict(),
            formula_key=formula.key,
            skipped=skipped,
        )
        snapshot_id = row.pk
        transaction.on_commit(announce_snapshot)
        log.info("calibration_snapshot_stored", extra={"event": "calibration_snapshot_stored", "tenant": tenant,
                 "n": len(scores), "threshold": threshold, "snapshot_id": row.pk})  # fmt: skip
    return RecalibrationResult(
        tenant=tenant,
        n=len(scores),
        n_min=n_min,
        old_threshold=old_threshold,
        new_threshold=threshold,
        source=source,
        snapshot_id=snapshot_id,
        changed=not unchanged,
        dry_run=dry_run,
        skipped=skipped,
    )


def preview_snapshots(
    tenants: Sequence[str], *, formula: ScoreFormula, delta: float, n_min: int
) -> dict[str, conformal.SnapshotValues | None]:
    """The snapshots that would decide for ``tenants`` under another formula and level, built in memory.

    Same labels, same fallback rule as ``current_snapshot`` (own set once n >= n_min, else the global set), so
    a what-if of a draft version can decide with the calibration that version would have. Nothing is stored.
    """
    now = timezone.now()

    def build(name: str, source: str) -> conformal.SnapshotValues:
        rows, _skipped = calibration_scores(name, formula)
        scores = sorted(score for _t, _p, score in rows)
        return conformal.SnapshotValues(
            id=0, tenant=name, n=len(scores), delta=delta, threshold=conformal.conformal_threshold(scores, delta),
            scores=tuple(scores), source=source, created_at=now, params_version=0, formula=formula,
        )  # fmt: skip

    fallback = build(GLOBAL_SET, Source.GLOBAL)
    previews: dict[str, conformal.SnapshotValues | None] = {}
    for name in tenants:
        own = build(name, Source.OWN)
        previews[name] = own if own.n >= n_min or fallback.n < n_min else fallback
    return previews


def calibrated_tenants() -> list[str]:
    """Every tenant with a label or a snapshot (not the global set), sorted."""
    names = set(CalibrationLabel.objects.values_list("tenant", flat=True).distinct())
    names |= set(CalibrationSnapshot.objects.exclude(tenant=GLOBAL_SET).values_list("tenant", flat=True).distinct())
    return sorted(names)


# --- The current snapshot, read by the request path ----------------------------------------------------


snapshot_generation = Generation(GENERATION_KEY)
# Tell every process that a snapshot changed (call after the commit).
announce_snapshot = snapshot_generation.announce
# Read the snapshot generation once for a request or a replay batch.
generation_pinned = snapshot_generation.pinned


def _values(row: CalibrationSnapshot, source: str) -> conformal.SnapshotValues:
    return conformal.SnapshotValues(
        id=row.pk,
        tenant=row.tenant,
        n=row.n,
        delta=row.delta,
        threshold=float("inf") if row.threshold is None else row.threshold,
        scores=tuple(row.scores),
        source=source,
        created_at=row.created_at,
        params_version=row.params_version,
        content_hash=row.content_hash,
        formula=ScoreFormula.from_dict(row.formula) if row.formula else None,
    )


def _load_snapshot(tenant: str) -> conformal.SnapshotValues | None:
    own = _latest_row(tenant)
    if own is not None and own.n >= own.n_min:
        return _values(own, Source.OWN)
    fallback = _latest_row(GLOBAL_SET)
    if fallback is not None and fallback.n >= fallback.n_min:
        return _values(fallback, Source.GLOBAL)
    return _values(own, Source.OWN) if own is not None else None


# Misses are kept: tenants here are names of calibrated tenants, and "no snapshot yet" is the common case.
snapshot_memo: ProcessMemo[conformal.SnapshotValues | None] = ProcessMemo(
    _load_snapshot, snapshot_generation, keep_misses=True
)


def current_snapshot(tenant: str) -> conformal.SnapshotValues | None:
    """The snapshot that decides for ``tenant``: its own once n >= n_min, else the global set's, else its own.

    Read through a per-process copy invalidated by ``announce_snapshot``: no query on the warm request path.
    The caller still checks ``n`` against the active n_min.
    """
    return snapshot_memo.get(tenant)


# --- Monitors -----------------------------------------------------------------------------------------


def check_drift_tenant(tenant: str, *, level: float, since: datetime, limit: int = 5000) -> DriftReport | None:
    """KS test of the tenant's recent traffic scores against its current calibration scores; store a report."""
    snapshot = _load_snapshot(tenant)
    if snapshot is None or snapshot.n == 0:
        return None
    recent = traffic_scores_provider()(tenant, since, limit)
    if not recent:
        return None
    test = conformal.ks_drift(recent, snapshot.scores)
    report = DriftReport.objects.create(
        tenant=tenant,
        snapshot_id=snapshot.id,
        n_recent=test.n_recent,
        n_calibration=test.n_calibration,
        statistic=test.statistic,
        p_value=test.p_value,
        level=level,
        drift_detected=test.p_value < level,
    )
    if report.drift_detected:
        log.warning("calibration_drift_detected", extra={"event": "calibration_drift_detected", "tenant": tenant,
                    "p_value": test.p_value, "statistic": test.statistic, "n_recent": test.n_recent})  # fmt: skip
    return report


def check_miscoverage_tenant(tenant: str, *, delta: float, audit_rate: float) -> MiscoverageReport | None:
    """The empirical false-escalation rate of benign PCS against delta, with a one-sided binomial test.

    Benign labels of escalated PCS are all reviewed; benign accepted PCS are seen only through the audit
    sample, so each benign audit label stands for 1/audit_rate accepted PCS. The rate is
    escalated / (escalated + benign_audit / audit_rate) within the calibration window: an estimate whose
    precision is limited by the audit sample's size, reported for humans.
    """
    window = CalibrationLabel.objects.filter(tenant=tenant, label=Label.BENIGN, labelled_at__gte=_window_start())
    escalated = window.filter(provenance=Provenance.ESCALATION).count()
    benign_audit = window.filter(provenance=Provenance.AUDIT).count()
    if benign_audit == 0 or audit_rate <= 0:
        return None
    total = escalated + max(1, round(benign_audit / audit_rate))
    test = conformal.miscoverage_test(escalated, total, delta)
    report = MiscoverageReport.objects.create(
        tenant=tenant,
        escalated=escalated,
        benign_audit=benign_audit,
        total=total,
        rate=test.rate,
        delta=delta,
        p_value=test.p_value,
    )
    if test.p_value < float(getattr(settings, "FLK_MISCOVERAGE_LEVEL", 0.01)):
        log.warning("calibration_miscoverage", extra={"event": "calibration_miscoverage", "tenant": tenant,
                    "rate": test.rate, "delta": delta, "p_value": test.p_value})  # fmt: skip
    return report
