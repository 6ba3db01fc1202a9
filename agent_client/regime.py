"""Regime classification and the compute budget of a PCS (DESIGN.md section 6)."""

from __future__ import annotations

from dataclasses import dataclass

STICKY = "sticky"
MIXED = "mixed"
NON_STICKY = "non_sticky"
REGIMES = (STICKY, MIXED, NON_STICKY)


@dataclass(frozen=True)
class BudgetWeights:
    """The budget formula's coefficients; the defaults are the protocol's."""

    base: float = 0.10
    alpha: float = 0.30
    beta: float = 0.50
    gamma: float = 0.20
    d0: float = 2.2


@dataclass(frozen=True)
class RegimeThresholds:
    sticky_coh_min: float = 0.70
    sticky_d_max: float = 1.5
    non_sticky_d_min: float = 2.6


def classify_regime(d_hat: float, coh_star: float, t: RegimeThresholds = RegimeThresholds()) -> str:
    """sticky if coh★ ≥ 0.70 and D̂ ≤ 1.5; non_sticky if D̂ ≥ 2.6; otherwise mixed."""
    if coh_star >= t.sticky_coh_min and d_hat <= t.sticky_d_max:
        return STICKY
    if d_hat >= t.non_sticky_d_min:
        return NON_STICKY
    return MIXED


def compute_budget(d_hat: float, coh_star: float, r: float, w: BudgetWeights = BudgetWeights()) -> float:
    """clamp01(base + alpha·(1 − r) + beta·max(0, D̂ − D0) + gamma·coh★)."""
    raw = w.base + w.alpha * (1.0 - r) + w.beta * max(0.0, d_hat - w.d0) + w.gamma * coh_star
    return min(1.0, max(0.0, raw))
