"""Verification of a validated PCS against one version of VerifyParams: a pure function of values.

No ORM and no settings here, so the same code runs in a request, in WAL replay, in a what-if over a draft
version and in tests. Every failing check is reported with a stable code (the golden vectors'
``failed_checks`` names) and a sentence for people.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent_client.canonical import round9
from agent_client.dimension import theil_sen_dhat
from agent_client.regime import BudgetWeights, RegimeThresholds, classify_regime, compute_budget
from calibration.conformal import SnapshotValues
from calibration.scoring import ScoreFormula, score_signals

ACCEPT = "accept"
ESCALATE = "escalate"
REJECT = "reject"

D_HAT_TOLERANCE = "D_hat_tolerance"
COH_STAR_BOUNDS = "coh_star_bounds"
REGIME_MISMATCH = "regime_mismatch"
BUDGET_DEVIATION = "budget_deviation"
DEGRADED = "degraded"
CONFORMAL = "conformal_p_value"


@dataclass(frozen=True)
class VerifyParamsValues:
    """The values of one VerifyParams version, detached from the database row."""

    version: int = 0
    tol_d: float = 0.15
    tol_coh: float = 0.05
    budget_tol: float = 0.01
    budget: BudgetWeights = field(default_factory=BudgetWeights)
    regimes: RegimeThresholds = field(default_factory=RegimeThresholds)
    w_d: float = 0.35
    w_coh: float = 0.40
    w_r: float = 0.25
    r0: float = 0.65
    score_kind: str = "reference"  # calibration.scoring.SCORE_KINDS
    delta: float = 0.05
    reject_delta: float = 0.005
    n_min: int = 100
    audit_rate: float = 0.02
    bootstrap_audit_rate: float = 0.2
    dedup_ttl_days: int = 14

    @property
    def score_formula(self) -> ScoreFormula:
        """The active score: its kind and global weights. A kind fitted per tenant is fitted at recalibration,
        and the p-value then uses the snapshot's fitted formula (``verify_pcs``)."""
        return ScoreFormula(
            w_d=self.w_d, w_coh=self.w_coh, w_r=self.w_r, r0=self.r0, tol_coh=self.tol_coh, kind=self.score_kind
        )


def reject_possible(n: int, reject_delta: float) -> bool:
    """Whether n calibration scores can give a p-value of at most reject_delta: the smallest is 1/(n+1).

    Below n = 1/reject_delta − 1 (199 at 0.005) rejection is impossible, so it is off and such PCS escalate.
    """
    return 1.0 / (n + 1) <= reject_delta * (1.0 + 1e-9)


@dataclass(frozen=True)
class FailedCheck:
    code: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.detail}


@dataclass(frozen=True)
class ConformalResult:
    """The conformal part of a verdict: the score against one calibration snapshot."""

    score: float
    threshold: float
    p_value: float
    n: int
    snapshot_id: int
    source: str
    delta: float = 0.05
    reject_enabled: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold if self.threshold != float("inf") else None,  # JSON has no infinity
            "p_value": self.p_value,
            "n": self.n,
            "snapshot_id": self.snapshot_id,
            "source": self.source,
            "delta": self.delta,
            "reject_enabled": self.reject_enabled,
        }


@dataclass(frozen=True)
class Verdict:
    decision: str
    failed_checks: tuple[FailedCheck, ...]
    recomputed_d_hat: float
    regime: str
    budget: float
    score: float | None = None
    conformal: ConformalResult | None = None

    @property
    def accepted(self) -> bool:
        return self.decision == ACCEPT

    @property
    def http_status(self) -> int:
        return 200 if self.accepted else 202


def verify_pcs(pcs: Mapping[str, Any], params: VerifyParamsValues, snapshot: SnapshotValues | None = None) -> Verdict:
    """Recompute D̂, regime and budget and check the claims; any failed check escalates.

    Regime and budget are recomputed from the *claimed* D̂ so that each lie shows up in exactly one
    check: a wrong D̂ fails ``D_hat_tolerance``; a budget inconsistent with the claimed signals fails
    ``budget_deviation``.

    Every PCS gets its nonconformity score. When ``snapshot`` holds at least ``n_min`` benign scores and no
    check failed, the conformal p-value decides: p > delta accepts, reject_delta < p <= delta escalates,
    p <= reject_delta rejects. Under exchangeability a benign PCS is escalated or rejected with probability
    at most delta; nothing is guaranteed about accepting an anomalous one.
    """
    d_claimed = pcs["D_hat"]
    coh = pcs["coh_star"]
    d_recomputed = theil_sen_dhat(pcs["scales"], pcs["N_j"])
    regime = classify_regime(d_claimed, coh, params.regimes)
    budget = compute_budget(d_claimed, coh, pcs["r"], params.budget)

    failed: list[FailedCheck] = []
    if abs(d_claimed - d_recomputed) > params.tol_d:
        failed.append(
            FailedCheck(
                D_HAT_TOLERANCE,
                f"claimed D_hat {d_claimed:.6g} differs from the recomputed {d_recomputed:.6g} "
                f"by more than tolD {params.tol_d:g}",
            )
        )
    coh_max = 1.0 + params.tol_coh
    if not 0.0 <= coh <= coh_max:
        failed.append(FailedCheck(COH_STAR_BOUNDS, f"coh_star {coh:.6g} is outside [0, {coh_max:g}]"))
    if pcs["regime"] != regime:
        failed.append(
            FailedCheck(
                REGIME_MISMATCH,
                f"claimed regime {pcs['regime']!r} but the claimed signals give {regime!r}",
            )
        )
    if abs(pcs["budget"] - budget) > params.budget_tol:
        failed.append(
            FailedCheck(
                BUDGET_DEVIATION,
                f"claimed budget {pcs['budget']:.6g} differs from the recomputed {budget:.6g} "
                f"by more than {params.budget_tol:g}",
            )
        )
    ft = pcs.get("ft")
    if isinstance(ft, dict) and ft.get("degraded") is True:
        fallbacks = ", ".join(ft.get("fallbacks") or []) or "none named"
        failed.append(FailedCheck(DEGRADED, f"the agent marked this PCS degraded (fallbacks: {fallbacks})"))

    signals = score_signals(pcs)
    formula = params.score_formula
    score = formula.score(signals)
    decision = ESCALATE if failed else ACCEPT
    conformal = None
    if snapshot is not None and snapshot.n >= params.n_min:
        # The p-value compares like with like: a snapshot scored under another formula (parameters changed and
        # the recalibration has not run yet) is compared with this PCS's score under that same formula.
        same = snapshot.formula is None or snapshot.formula.key == formula.key
        conformal_score = score if same else snapshot.formula.score(signals)
        p = snapshot.p_value(conformal_score)
        can_reject = reject_possible(snapshot.n, params.reject_delta)
        conformal = ConformalResult(
            conformal_score, snapshot.threshold, round9(p), snapshot.n, snapshot.id, snapshot.source,
            delta=params.delta, reject_enabled=can_reject,
        )  # fmt: skip
        if not failed and p <= params.delta:
            decision = REJECT if can_reject and p <= params.reject_delta else ESCALATE
            level = f"reject_delta {params.reject_delta:g}" if decision == REJECT else f"delta {params.delta:g}"
            detail = (
                f"score {conformal_score:.6g} has conformal p-value {p:.6g} <= {level} against {snapshot.n} benign "
                "scores"
            )
            if not can_reject:
                holds = math.ceil(round(1 / params.reject_delta - 1, 6))
                detail += f" (rejection is off until the calibration set holds {holds} scores)"
            failed.append(FailedCheck(CONFORMAL, detail))

    return Verdict(
        decision=decision,
        failed_checks=tuple(failed),
        recomputed_d_hat=round9(d_recomputed),
        regime=regime,
        budget=round9(budget),
        score=score,
        conformal=conformal,
    )
