"""The business operations of calibration: labels in, snapshots out, and the monitors.

Views, Celery tasks, the ``recalibrate`` command and the review queue call these functions; none of them
re-implements one. Calibration never imports ingest or review: tenants are names, scores are values, and
what it needs from VerifyParams comes through the provider named by ``FLK_CALIBRATION_PARAMS_PROVIDER``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from calibration import conformal, monitors
from calibration.generations import Generation, ProcessMemo
from calibration.models import (
    GLOBAL_SET,
    AuditAlarm,
    CalibrationLabel,
    CalibrationSnapshot,
    DriftReport,
    ExpiredAudit,
    Label,
    MiscoverageReport,
    PerformanceReport,
    Provenance,
    Source,
)
from calibration.scoring import ScoreFormula, fit_formula, in_fit_fold

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
    return import_string(getattr(settings, "FLK_CALIBRATION_PARAMS_PROVIDER", "policy.params.calibration_params"))


def traffic_scores_provider() -> Callable[[str, datetime, int], list[float]]:
    return import_string(
        getattr(settings, "FLK_CALIBRATION_TRAFFIC_PROVIDER", "ingest.calibration_feeds.recent_traffic_scores")
    )


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


@dataclass(frozen=True)
class SignalRange:
    """The central range of one signal over a tenant's benign audit labels: ``low`` and ``high`` quantiles."""

    low: float
    high: float
    n: int

    def contains(self, value: float | None) -> bool | None:
        return None if value is None else self.low <= value <= self.high


def typical_signals(tenant: str, *, coverage: float = 0.9, latest: int = 5000) -> dict[str, SignalRange]:
    """Per signal (D_hat, coh_star, r), the central ``coverage`` range over the tenant's latest benign audit labels.

    Audit samples are drawn whatever the verdict, so their benign labels describe the tenant's ordinary traffic
    (escalation labels would describe only what was already unusual). Empty with fewer than 10 such labels. A
    description for reviewers, not a test: about 1 - coverage of benign PCS fall outside on each signal.
    """
    rows = list(
        CalibrationLabel.objects.filter(tenant=tenant, label=Label.BENIGN, provenance=Provenance.AUDIT)
        .exclude(signals__isnull=True)
        .order_by("-labelled_at")
        .values_list("signals", flat=True)[:latest]
    )
    ranges: dict[str, SignalRange] = {}
    tail = (1.0 - coverage) / 2
    for name in ("D_hat", "coh_star", "r"):
        values = sorted(float(v[name]) for v in rows if isinstance(v, dict) and isinstance(v.get(name), (int, float)))
        if len(values) < 10:
            continue
        low = values[math.floor(tail * (len(values) - 1))]
        high = values[math.ceil((1.0 - tail) * (len(values) - 1))]
        ranges[name] = SignalRange(low=low, high=high, n=len(values))
    return ranges


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
    return import_string(
        getattr(settings, "FLK_CALIBRATION_AUDIT_PROVIDER", "ingest.calibration_feeds.waiting_audit_samples")
    )


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
    # What differs from the latest snapshot, in words ("no snapshot yet", "labels", "delta 0.05 -> 0.1", ...):
    # a new snapshot is stored when anything does, even if the threshold stays the same.
    differences: tuple[str, ...] = ()


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


def fit_labels(tenant: str) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """The signals a tenant's score is fitted on: (benign audit labels of the fit fold, anomalous labels).

    Neither ever enters the tenant's calibration set: the fit fold is left out of it (``scoring.in_fit_fold``),
    and anomalous labels never calibrate. Same window as the calibration set; ``GLOBAL_SET`` takes every tenant's.
    Labels without signals (stored before labels kept them) cannot be used and are left out.
    """
    query = CalibrationLabel.objects.filter(labelled_at__gte=_window_start(), signals__isnull=False)
    if tenant != GLOBAL_SET:
        query = query.filter(tenant=tenant)
    max_size = int(getattr(settings, "FLK_CALIBRATION_MAX_SIZE", 5000))
    benign = query.filter(label=Label.BENIGN, provenance=Provenance.AUDIT).order_by("-labelled_at", "-id")
    anomalous = query.filter(label=Label.ANOMALOUS).order_by("-labelled_at", "-id")
    return (
        [signals for pcs_id, signals in benign.values_list("pcs_id", "signals")[:max_size] if in_fit_fold(pcs_id)],
        list(anomalous.values_list("signals", flat=True)[:max_size]),
    )


def tenant_formula(tenant: str, spec: ScoreFormula) -> ScoreFormula:
    """The formula that scores ``tenant``'s calibration set: ``spec`` itself, or fitted to the tenant's fit labels."""
    if not spec.needs_fit:
        return spec
    return fit_formula(spec, *fit_labels(tenant))


def calibration_scores(tenant: str, formula: ScoreFormula) -> tuple[list[tuple[str, str, float]], int]:
    """The (tenant, pcs_id, score) of ``tenant``'s quantile, every score under ``formula``; and how many were left out.

    A label's score is recomputed from its signals; a label without signals counts only if it was scored under
    this very formula. The skipped count says how many labels a formula change cost. A formula fitted per
    tenant (``needs_fit``) leaves out the fit fold, whose labels fitted it: they are not counted as skipped.
    """
    scored: list[tuple[str, str, float]] = []
    skipped = 0
    for name, pcs_id, score, key, signals in calibration_labels(tenant):
        if formula.needs_fit and in_fit_fold(pcs_id):
            continue
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
    # A score kind fitted per tenant is fitted here, on labels outside the calibration set, and the snapshot
    # keeps the fitted formula: the request path scores new PCS with it (policy.verification).
    formula = tenant_formula(tenant, formula or params_provider()().formula)
    rows, skipped = calibration_scores(tenant, formula)
    scores = sorted(float(score) for _t, _p, score in rows)
    threshold = conformal.conformal_threshold(scores, delta)
    content_hash = _content_hash(rows)
    latest = _latest_row(tenant)
    old_threshold = None
    if latest is not None:
        old_threshold = float("inf") if latest.threshold is None else latest.threshold
    source = Source.OWN if tenant == GLOBAL_SET or len(scores) >= n_min else Source.GLOBAL
    differences: list[str] = []
    if latest is None:
        differences.append("no snapshot yet")
    else:
        if latest.content_hash != content_hash:
            differences.append("labels")
        if latest.delta != delta:
            differences.append(f"delta {latest.delta:g} -> {delta:g}")
        if latest.n_min != n_min:
            differences.append(f"n_min {latest.n_min} -> {n_min}")
        if latest.params_version != params_version:
            differences.append(f"VerifyParams v{latest.params_version} -> v{params_version}")
        if latest.formula_key != formula.key:
            differences.append("score formula")
    unchanged = not differences
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
        differences=tuple(differences),
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
        fitted = tenant_formula(name, formula)
        rows, _skipped = calibration_scores(name, fitted)
        scores = sorted(score for _t, _p, score in rows)
        return conformal.SnapshotValues(
            id=0, tenant=name, n=len(scores), delta=delta, threshold=conformal.conformal_threshold(scores, delta),
            scores=tuple(scores), source=source, created_at=now, params_version=0, formula=fitted,
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
#
# Every monitor reads the audit sample only: PCS drawn at random with a recorded inclusion probability,
# whatever their verdict, and labelled blind. The statistics are in calibration/monitors.py.


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


# Expected audit draws in FLK_AUDIT_SILENT_HOURS above which no audit label at all is an alarm: with 5 expected
# draws, no draw at all has probability e^-5 < 1 %, so the silence is the labelling's, not the sampling's.
SILENT_MIN_EXPECTED_DRAWS = 5.0


def miscoverage_estimate(tenant: str, *, since: datetime, default_delta: float) -> monitors.MiscoverageEstimate:
    """The false-escalation rate of ``tenant``'s benign PCS from its benign AUDIT labels since ``since``.

    Counted: benign audit labels whose conformal p-value at ingest was <= delta (``flagged``), over benign audit
    labels the conformal step judged (``flagged`` not null). The conformal step's flag is counted whatever the
    other checks said: a benign PCS escalated because a check failed is not a conformal miscoverage, and one
    flagged by the conformal step while also failing a check is. Escalation labels outside the audit sample
    never count (they are a selected sample). Unweighted: each audit label is a benign PCS flagged with
    probability at most delta whatever its inclusion probability, so the plain count tests the guarantee.
    The test uses the smallest calibration size and the largest delta of the window (see
    ``monitors.miscoverage_estimate``).
    """
    judged = CalibrationLabel.objects.filter(
        tenant=tenant,
        label=Label.BENIGN,
        provenance=Provenance.AUDIT,
        labelled_at__gte=since,
        flagged__isnull=False,
    )
    counts = judged.aggregate(
        considered=Count("id"), flagged=Count("id", filter=Q(flagged=True)), n=Min("snapshot_n"), delta=Max("delta")
    )
    delta = counts["delta"] if counts["delta"] is not None else default_delta
    return monitors.miscoverage_estimate(counts["flagged"], counts["considered"], delta=delta, snapshot_n=counts["n"])


def audit_alarm(
    tenant: str, *, audit_rate: float, completion: AuditCompletion | None, now: datetime
) -> tuple[str, str]:
    """The alarm of a missing, stopped or stale audit for ``tenant``: (kind, detail), kind "" when none.

    - off: the audit share is 0, so no benign label can be gathered and every monitor goes blind;
    - silent: no audit label for FLK_AUDIT_SILENT_HOURS while the tenant received enough PCS that at least
      SILENT_MIN_EXPECTED_DRAWS audit samples were expected (labelling stopped or fell far behind);
    - stale: an audit sample has waited for a label longer than FLK_AUDIT_STALE_HOURS without being expired
      (labels that come back late, or never, bias the calibration set towards the PCS labelled quickly).
    The first that holds names the alarm; the detail lists all of them.
    """
    reasons: list[tuple[str, str]] = []
    if audit_rate <= 0:
        reasons.append((AuditAlarm.OFF, "audit_rate is 0"))
    silent_hours = _setting("FLK_AUDIT_SILENT_HOURS", 48.0)
    since = now - timedelta(hours=silent_hours)
    if audit_rate > 0:
        labelled_lately = CalibrationLabel.objects.filter(
            tenant=tenant, provenance=Provenance.AUDIT, labelled_at__gte=since
        ).exists()
        if not labelled_lately:
            needed = math.ceil(SILENT_MIN_EXPECTED_DRAWS / audit_rate)
            received = len(traffic_scores_provider()(tenant, since, needed))
            if received >= needed:
                reasons.append(
                    (AuditAlarm.SILENT, f"no audit label in {silent_hours:g} h while {received}+ PCS were received")
                )
    stale_hours = _setting("FLK_AUDIT_STALE_HOURS", 72.0)
    waited = completion.oldest_waiting_seconds if completion is not None else None
    if waited is not None and waited > stale_hours * 3600.0:
        detail = f"{completion.waiting} audit samples waiting, the oldest for {waited / 3600:.0f} h"
        reasons.append((AuditAlarm.STALE, f"{detail} (allowed {stale_hours:g} h)"))
    if not reasons:
        return AuditAlarm.NONE, ""
    return reasons[0][0], "; ".join(detail for _kind, detail in reasons)[:300]


def monitored_tenants() -> list[str]:
    """Tenants with labels, snapshots or audit samples waiting: a tenant whose labels stopped is still checked."""
    return sorted(set(calibrated_tenants()) | set(audit_completion()))


def check_miscoverage(tenants: Sequence[str] | None = None, *, now: datetime | None = None) -> list[MiscoverageReport]:
    """Check every tenant's false-escalation rate and audit labelling; store one report per tenant.

    The rate's p-values go through Benjamini–Hochberg at FLK_MISCOVERAGE_LEVEL across the tenants of the run:
    when every tenant works, the chance that any raises an alarm in a run is at most the level, and otherwise
    the expected share of false alarms among alarms is. The level holds per run: runs over overlapping windows
    are correlated, not independent tests (the drift martingale is the monitor with a bound over all time).
    Audit alarms are decided per tenant (``audit_alarm``) and need no correction: they are facts, not tests.
    """
    now = now or timezone.now()
    params = params_provider()()
    level = _setting("FLK_MISCOVERAGE_LEVEL", 0.01)
    since = now - timedelta(days=_setting("FLK_MISCOVERAGE_WINDOW_DAYS", 7.0))
    names = list(tenants) if tenants is not None else monitored_tenants()
    completion = audit_completion()
    estimates = {name: miscoverage_estimate(name, since=since, default_delta=params.delta) for name in names}
    tested = [name for name in names if estimates[name].considered]
    rejected, adjusted = monitors.benjamini_hochberg([estimates[name].p_value for name in tested], level)
    decided = {name: (alarm, q) for name, alarm, q in zip(tested, rejected, adjusted, strict=True)}
    reports = []
    for name in names:
        estimate = estimates[name]
        alarm, adjusted_p = decided.get(name, (False, 1.0))
        done = completion.get(name)
        kind, detail = audit_alarm(name, audit_rate=params.audit_rate, completion=done, now=now)
        reports.append(
            MiscoverageReport(
                tenant=name, window_start=since, flagged=estimate.flagged, considered=estimate.considered,
                rate=estimate.rate, ci_low=estimate.ci_low, ci_high=estimate.ci_high, delta=estimate.delta,
                snapshot_n=estimate.snapshot_n, binomial_p=estimate.binomial_p, p_value=estimate.p_value,
                adjusted_p=adjusted_p, level=level, alarm=alarm, audit_alarm=kind, audit_detail=detail,
                labelled=done.labelled if done else 0, expired=done.expired if done else 0,
                waiting=done.waiting if done else 0,
                oldest_waiting_seconds=done.oldest_waiting_seconds if done else None,
            )
        )  # fmt: skip
        if alarm:
            log.warning("calibration_miscoverage", extra={"event": "calibration_miscoverage", "tenant": name,
                        "rate": estimate.rate, "ci_low": estimate.ci_low, "delta": estimate.delta,
                        "p_value": estimate.p_value, "adjusted_p": adjusted_p})  # fmt: skip
        if kind:
            log.warning("calibration_audit_alarm", extra={"event": "calibration_audit_alarm", "tenant": name,
                        "kind": kind, "detail": detail})  # fmt: skip
    return MiscoverageReport.objects.bulk_create(reports)


def performance_figures(tenant: str, *, since: datetime | None = None) -> monitors.Performance:
    """Power and precision of ``tenant``'s verdicts from its audit labels since ``since`` (the calibration window).

    Only audit labels with a recorded inclusion probability and verdict count, each weighted by 1/probability
    (Horvitz–Thompson ratio estimates): the bootstrap audit share samples a young tenant's PCS more heavily.
    """
    rows = CalibrationLabel.objects.filter(
        tenant=tenant,
        provenance=Provenance.AUDIT,
        labelled_at__gte=since or _window_start(),
        inclusion_probability__isnull=False,
        decision__in=("accept", "escalate", "reject"),
    ).values_list("label", "decision", "inclusion_probability")
    outcomes = [
        monitors.AuditOutcome(anomalous=label == Label.ANOMALOUS, accepted=decision == "accept",
                              inclusion_probability=probability)
        for label, decision, probability in rows
    ]  # fmt: skip
    return monitors.performance(outcomes)


def record_performance(tenant: str) -> PerformanceReport:
    """Store ``tenant``'s power and precision over the calibration window (read by metrics and pages)."""
    since = _window_start()
    figures = performance_figures(tenant, since=since)
    power, precision = figures.power, figures.precision
    return PerformanceReport.objects.create(
        tenant=tenant, window_start=since,
        power=power.estimate, power_ci_low=power.ci_low, power_ci_high=power.ci_high,
        power_labels=power.labels, power_effective_n=power.effective_n,
        precision=precision.estimate, precision_ci_low=precision.ci_low, precision_ci_high=precision.ci_high,
        precision_labels=precision.labels, precision_effective_n=precision.effective_n,
    )  # fmt: skip


def _drift_stream_start(tenant: str, previous: DriftReport | None, now: datetime) -> datetime | None:
    """Where ``tenant``'s stream starts: where the previous one did, or after its alarm once the alarm was held.

    An alarm stays raised (every hourly report says so) for FLK_DRIFT_HOLD_HOURS; then a new stream starts with
    the labels after the alarm, so a shift is reported once and the monitor watches the new regime. Restarting
    only after an alarm keeps the bound: on stationary traffic the first alarm has probability at most level.
    """
    if previous is None:
        return None
    if previous.drift_detected and previous.alarm_at is not None:
        first = (
            DriftReport.objects.filter(tenant=tenant, drift_detected=True, alarm_at=previous.alarm_at)
            .order_by("id")
            .values_list("created_at", flat=True)
            .first()
        )
        if first is not None and now - first >= timedelta(hours=_setting("FLK_DRIFT_HOLD_HOURS", 24.0)):
            return previous.alarm_at
    return previous.stream_start


def drift_stream(
    tenant: str, *, start: datetime | None, formula: ScoreFormula
) -> tuple[list[float], list[float], list[datetime]]:
    """The benign audit scores of ``tenant`` after ``start``, in label order, under ``formula``; their draws and times.

    Labels whose score cannot be computed under ``formula`` (no signals, another formula) are left out, and so
    is the fit fold of a formula fitted per tenant: those labels fitted it, so their scores are not exchangeable
    with the others'.
    """
    rows = CalibrationLabel.objects.filter(tenant=tenant, label=Label.BENIGN, provenance=Provenance.AUDIT)
    if start is not None:
        rows = rows.filter(labelled_at__gt=start)
    scores: list[float] = []
    draws: list[float] = []
    times: list[datetime] = []
    ordered = rows.order_by("labelled_at", "id").values_list("pcs_id", "score", "formula_key", "signals", "labelled_at")
    for pcs_id, score, key, signals, labelled_at in ordered.iterator(chunk_size=5000):
        if formula.needs_fit and in_fit_fold(pcs_id):
            continue
        if signals:
            value = formula.score(signals)
        elif score is not None and key == formula.key:
            value = float(score)
        else:
            continue
        scores.append(value)
        draws.append(monitors.smoothing_draw(tenant, pcs_id))
        times.append(labelled_at)
    return scores, draws, times


def drift_formula(tenant: str, spec: ScoreFormula) -> ScoreFormula:
    """The formula ``tenant``'s drift stream is scored with: ``spec``, or the tenant's fitted one.

    A score kind fitted per tenant uses the fit of the tenant's latest own snapshot (the one its PCS are scored
    with), else a fit now. Known limit: each recalibration refits it and the stream is rescored, so the level
    holds per fit; the refits move the fit little once the fold is large, but the bound is then approximate.
    """
    if not spec.needs_fit:
        return spec
    row = _latest_row(tenant)
    if row is not None and row.formula:
        stored = ScoreFormula.from_dict(row.formula)
        if stored.kind == spec.kind:
            return stored
    return tenant_formula(tenant, spec)


def check_drift_tenant(
    tenant: str, *, level: float, formula: ScoreFormula | None = None, now: datetime | None = None
) -> DriftReport | None:
    """One look at ``tenant``'s drift martingale over its benign audit scores; a report, or None if too few.

    A conformal test martingale (``monitors.drift_path``) over the stream of benign audit labels' scores,
    rescored under the active formula, in label order: like is compared with like (benign audited PCS with
    benign audited PCS), and the alarm at 1/level has probability at most ``level`` over the whole stream on
    stationary traffic (Ville), so the hourly looks need no correction. Each tenant is its own stream with its
    own bound: across T tenants at most T·level false alarms are expected (set FLK_DRIFT_LEVEL to level/T for
    a bound on any alarm at all). A formula change rescores the stream: the bound then holds per formula (and
    per fit, for a score kind fitted per tenant: ``drift_formula``). No
    report before FLK_DRIFT_MIN_LABELS labels. The stream is recomputed from its start at each look
    (O(N log N), about 0.4 s for 70,000 labels).
    """
    now = now or timezone.now()
    formula = drift_formula(tenant, formula or params_provider()().formula)
    previous = DriftReport.objects.filter(tenant=tenant).order_by("-id").first()
    start = _drift_stream_start(tenant, previous, now)
    scores, draws, times = drift_stream(tenant, start=start, formula=formula)
    if len(scores) < int(_setting("FLK_DRIFT_MIN_LABELS", 50)):
        return None
    path = monitors.drift_path(scores, draws, level=level, jump=_setting("FLK_DRIFT_JUMP", 0.01))
    alarm_at = times[path.alarm_index] if path.alarm_index is not None else None
    report = DriftReport.objects.create(
        tenant=tenant, formula_key=formula.key, stream_start=start, n_labels=len(scores),
        martingale=float(path.values[-1]), martingale_max=path.running_max, p_value=path.p_value, level=level,
        drift_detected=alarm_at is not None, alarm_at=alarm_at,
    )  # fmt: skip
    if report.drift_detected and (previous is None or previous.alarm_at != alarm_at):
        log.warning("calibration_drift_detected", extra={"event": "calibration_drift_detected", "tenant": tenant,
                    "martingale": report.martingale, "n_labels": len(scores), "alarm_at": alarm_at.isoformat()})  # fmt: skip
    return report
