"""The nonconformity score of a PCS: larger means less like the benign work the calibration set holds.

A score is only comparable with scores computed by the same formula. ``ScoreFormula`` names one formula (its
weights and references) and its ``key``: a calibration snapshot records the key of the formula its scores were
computed with, and recalibration recomputes every label's score from the signals the label keeps, so that a
snapshot never mixes two formulas and a parameter change never compares a new score with old ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from agent_client.canonical import round9

D_HAT_CAP = 3.5
# The signals a score is a function of; a label keeps them so its score can be recomputed under new parameters.
SCORE_SIGNALS: tuple[str, ...] = ("D_hat", "coh_star", "r")


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


@dataclass(frozen=True)
class ScoreFormula:
    """One nonconformity formula: the parameters of ``nonconformity_score`` as values, with a stable key."""

    w_d: float = 0.35
    w_coh: float = 0.40
    w_r: float = 0.25
    r0: float = 0.65
    tol_coh: float = 0.05

    @cached_property
    def key(self) -> str:
        """A short digest of the formula: equal keys mean scores computed by it are comparable."""
        text = json.dumps({"v": 1, **asdict(self)}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ScoreFormula:
        return cls(**{name: float(values[name]) for name in cls.__dataclass_fields__})

    def score(self, signals: Mapping[str, Any]) -> float:
        """The score of a PCS's signals (``D_hat``, ``coh_star``, ``r``), rounded to 9 decimals like the wire."""
        return round9(
            nonconformity_score(
                float(signals["D_hat"]), float(signals["coh_star"]), float(signals["r"]),
                w_d=self.w_d, w_coh=self.w_coh, w_r=self.w_r, r0=self.r0, tol_coh=self.tol_coh,
            )
        )  # fmt: skip


def score_signals(pcs: Mapping[str, Any]) -> dict[str, float]:
    """The signals of a PCS that its score depends on, as a label keeps them."""
    return {name: float(pcs[name]) for name in SCORE_SIGNALS}
