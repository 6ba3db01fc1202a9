"""The nonconformity score of a PCS: larger means less like the benign work the calibration set holds."""

from __future__ import annotations

D_HAT_CAP = 3.5


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def nonconformity_score(
    d_hat: float,
    coh_star: float,
    r: float,
    *,
    w_d: float = 0.35,
    w_coh: float = 0.40,
    w_r: float = 0.25,
    r0: float = 0.65,
    tol_coh: float = 0.05,
) -> float:
    """``w_D·(1 − clamp(D̂,0,3.5)/3.5) + w_coh·(1 − clamp(coh★,0,1+tolCoh)/(1+tolCoh)) + w_r·min(1,|r−r0|/r0)``.

    Low dimension, low coherence and a compressibility far from r0 all raise the score. The weights, r0 and
    tolCoh are VerifyParams fields; the defaults are the reference design's.
    """
    if r0 <= 0:
        raise ValueError("r0 must be positive")
    coh_cap = 1.0 + tol_coh
    return (
        w_d * (1.0 - _clamp(d_hat, 0.0, D_HAT_CAP) / D_HAT_CAP)
        + w_coh * (1.0 - _clamp(coh_star, 0.0, coh_cap) / coh_cap)
        + w_r * min(1.0, abs(r - r0) / r0)
    )
