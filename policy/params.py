"""The active VerifyParams version as values, for the request path, tasks and calibration."""

from __future__ import annotations

from agent_client.regime import BudgetWeights, RegimeThresholds
from calibration.services import CalibrationParams
from policy.models import VerifyParams
from policy.verification import VerifyParamsValues
from tenancy.config_cache import ProcessMemo, config_generation


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
