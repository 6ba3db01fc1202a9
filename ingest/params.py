"""The active VerifyParams version as values, for the request path and tasks."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Exists, Min, OuterRef, Q

from agent_client.regime import BudgetWeights, RegimeThresholds
from calibration.services import CalibrationParams
from ingest.config_cache import ProcessMemo, config_generation
from ingest.models import VerifyParams
from ingest.verification import VerifyParamsValues


def params_values(row: VerifyParams) -> VerifyParamsValues:
    """Detach a VerifyParams row into the values the pure verification uses."""
    return VerifyParamsValues(
        version=row.version,
        tol_d=row.tol_d,
        tol_coh=row.tol_coh,
        budget_tol=row.budget_tol,
        budget=BudgetWeights(base=row.base, alpha=row.alpha, beta=row.beta, gamma=row.gamma, d0=row.d0),
        regimes=RegimeThresholds(
            sticky_coh_min=row.sticky_coh_min,
            sticky_d_max=row.sticky_d_max,
            non_sticky_d_min=row.non_sticky_d_min,
        ),
        w_d=row.w_d,
        w_coh=row.w_coh,
        w_r=row.w_r,
        r0=row.r0,
        score_kind=row.score_kind,
        delta=row.delta,
        reject_delta=row.reject_delta,
        n_min=row.n_min,
        audit_rate=row.audit_rate,
        bootstrap_audit_rate=row.bootstrap_audit_rate,
        dedup_ttl_days=row.dedup_ttl_days,
    )


class NoActiveParams(RuntimeError):
    """No VerifyParams version is active: the service cannot verify until an admin activates one."""


def _load_active(_key: str) -> VerifyParamsValues:
    row = VerifyParams.objects.filter(is_active=True).first()
    if row is None:
        raise NoActiveParams("no active VerifyParams version")
    return params_values(row)


active_params_memo: ProcessMemo[VerifyParamsValues] = ProcessMemo(_load_active, config_generation)


def calibration_params() -> CalibrationParams:
    """The active version's values calibration needs (FLK_CALIBRATION_PARAMS_PROVIDER points here)."""
    params = active_params_memo.get("active")
    return CalibrationParams(
        delta=params.delta,
        reject_delta=params.reject_delta,
        n_min=params.n_min,
        audit_rate=params.audit_rate,
        params_version=params.version,
        formula=params.score_formula,
    )


def recent_traffic_scores(tenant: str, since: datetime, limit: int) -> list[float]:
    """The newest scores of a tenant's stored PCS since ``since`` (FLK_CALIBRATION_TRAFFIC_PROVIDER)."""
    from ingest.models import PcsRecord

    rows = (
        PcsRecord.objects.filter(tenant__name=tenant, received_at__gte=since, score__isnull=False)
        .order_by("-received_at")
        .values_list("score", flat=True)[:limit]
    )
    return list(rows)


def awaiting_audit_label() -> Q:
    """Stored outcomes that are audit samples neither labelled nor expired (``calibration.models.ExpiredAudit``)."""
    from calibration.models import CalibrationLabel, ExpiredAudit

    same_pcs = {"tenant": OuterRef("tenant__name"), "pcs_id": OuterRef("pcs_id")}
    return (
        Q(audit_sample=True)
        & ~Exists(CalibrationLabel.objects.filter(**same_pcs))
        & ~Exists(ExpiredAudit.objects.filter(**same_pcs))
    )


def waiting_audit_samples(tenant: str | None = None) -> dict[str, tuple[int, datetime | None]]:
    """Per tenant, how many audit samples wait for a label and when the oldest was received.

    FLK_CALIBRATION_AUDIT_PROVIDER points here: calibration counts labels and expiries itself, and stored
    outcomes through this function.
    """
    from ingest.models import PcsRecord

    waiting = PcsRecord.objects.filter(awaiting_audit_label())
    if tenant is not None:
        waiting = waiting.filter(tenant__name=tenant)
    rows = waiting.values_list("tenant__name").annotate(n=Count("id"), oldest=Min("received_at"))
    return {name: (n, oldest) for name, n, oldest in rows.values_list("tenant__name", "n", "oldest")}
