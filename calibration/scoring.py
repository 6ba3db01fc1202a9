"""The nonconformity score of a PCS: larger means less like the benign work the calibration set holds.

A score is only comparable with scores computed by the same formula. ``ScoreFormula`` names one formula (its
weights and references) and its ``key``: a calibration snapshot records the key of the formula its scores were
computed with, and recalibration recomputes every label's score from the signals the label keeps, so that a
snapshot never mixes two formulas and a parameter change never compares a new score with old ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

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


# The kinds of score VerifyParams can name (its ``score_kind``):
REFERENCE = "reference"  # the seed's formula above: fixed references, the same for every tenant
CENTRED = "centred"  # distances from the tenant's own benign centre, in its own spread, with the global weights
FITTED = "fitted"  # as centred, with weights fitted per tenant on labels outside its calibration set
SCORE_KINDS: tuple[str, ...] = (REFERENCE, CENTRED, FITTED)

# Of the benign audit labels, those whose sha256(pcs_id) falls in fold 0 of FIT_FOLDS fit the tenant's centre,
# spread and weights; the others form its calibration set. One label is never in both.
FIT_FOLDS = 5
MIN_FIT_BENIGN = 20  # fewer benign labels in the fit fold: the formula's own centre and spread are kept
MIN_FIT_ANOMALOUS = 10  # fewer anomalous labels: the global weights are kept
FIT_SHRINK = 20  # fitted weights are pulled towards the global ones as if this many labels had said so
TERM_CAP = 8.0  # a term counts at most this many spreads: one wild signal cannot outweigh the others for ever
SPREAD_FLOOR = {"D_hat": 0.02, "coh_star": 0.01, "r": 0.01}
SIDE_SHARES = ("lo_d", "lo_coh", "lo_r")  # each signal's low-side share of its weight; 0.5: both sides alike


def in_fit_fold(pcs_id: str) -> bool:
    """Whether a benign audit label fits the tenant's formula (True) or may calibrate it (False).

    Decided by sha256(pcs_id), which nobody chooses: the split is independent of the PCS's signals and verdict.
    """
    return int(hashlib.sha256(pcs_id.encode()).hexdigest()[:8], 16) % FIT_FOLDS == 0


@dataclass(frozen=True)
class ScoreFormula:
    """One nonconformity formula, with a stable key: the score kind, its weights and its references.

    ``reference``: ``nonconformity_score`` (w_d, w_coh, w_r, r0, tol_coh). ``centred`` and ``fitted``, for each
    signal x with weight w_x, low-side share l_x, centre c_x and spread s_x::

        w_x·(2·l_x·min(8, max(0, c_x − x) / s_x) + 2·(1 − l_x)·min(8, max(0, x − c_x) / s_x))

    summed over D̂, coh★ and r: a one-sided term below the centre and one above, with c the tenant's benign
    medians and s their spreads (1.4826·MAD), fitted at recalibration (``fit_formula``). With l_x = 0.5 (the
    ``centred`` kind, and any tenant without enough anomalous labels) the two sides weigh the same and the term
    is w_x·min(8, |x − c_x| / s_x). Degeneracy moves each signal one way or the other depending on its kind,
    as measured on token embeddings of text (bench/detection.py): repetition and loops lower r (and D̂, and
    raise coh★), incoherence raises r and D̂ and lowers coh★; so no side is fixed for every tenant. ``fitted``
    takes the sides from the tenant's anomalous labels: l_x is the share of the low side in the separation of
    the anomalies from the benign fit fold, so a tenant whose anomalies are repetitive counts low r, not high
    r. Until a tenant has MIN_FIT_BENIGN labels in its fit fold, the centre and spread below (the benign texts
    of the detection benchmark, all-MiniLM-L6-v2) stand in.
    """

    w_d: float = 0.35
    w_coh: float = 0.40
    w_r: float = 0.25
    r0: float = 0.65
    tol_coh: float = 0.05
    kind: str = REFERENCE
    c_d: float = 0.8
    c_coh: float = 0.45
    c_r: float = 0.45
    s_d: float = 0.15
    s_coh: float = 0.08
    s_r: float = 0.05
    lo_d: float = 0.5
    lo_coh: float = 0.5
    lo_r: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in SCORE_KINDS:
            raise ValueError(f"score kind must be one of {', '.join(SCORE_KINDS)}, got {self.kind!r}")

    @property
    def needs_fit(self) -> bool:
        """Whether recalibration fits this formula per tenant (and keeps the fit fold out of calibration)."""
        return self.kind != REFERENCE

    @cached_property
    def key(self) -> str:
        """A short digest of the formula: equal keys mean scores computed by it are comparable."""
        text = json.dumps({"v": 1, **self.as_dict()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        if self.kind == REFERENCE:  # the fields of the reference formula alone: keys stored before kinds hold
            return {name: values[name] for name in ("w_d", "w_coh", "w_r", "r0", "tol_coh")}
        # Even sides are left out, so that formulas stored before sides had shares keep their keys.
        return {name: value for name, value in values.items() if not (name in SIDE_SHARES and value == 0.5)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ScoreFormula:
        fields = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**{name: value if name == "kind" else float(value) for name, value in fields.items()})

    def terms(self, signals: Mapping[str, Any]) -> tuple[float, float, float]:
        """The unweighted D̂, coh★ and r terms of a centred score (each in [0, TERM_CAP]): distances from the centre."""
        d, coh, r = float(signals["D_hat"]), float(signals["coh_star"]), float(signals["r"])
        return (
            min(TERM_CAP, abs(d - self.c_d) / self.s_d),
            min(TERM_CAP, abs(coh - self.c_coh) / self.s_coh),
            min(TERM_CAP, abs(r - self.c_r) / self.s_r),
        )

    def side_terms(self, signals: Mapping[str, Any]) -> tuple[float, ...]:
        """The one-sided terms (D̂ below, D̂ above, coh★ below, coh★ above, r below, r above), each in [0, TERM_CAP]."""
        d, coh, r = float(signals["D_hat"]), float(signals["coh_star"]), float(signals["r"])
        out: list[float] = []
        for x, c, s in ((d, self.c_d, self.s_d), (coh, self.c_coh, self.s_coh), (r, self.c_r, self.s_r)):
            out += [min(TERM_CAP, max(0.0, c - x) / s), min(TERM_CAP, max(0.0, x - c) / s)]
        return tuple(out)

    def score(self, signals: Mapping[str, Any]) -> float:
        """The score of a PCS's signals (``D_hat``, ``coh_star``, ``r``), rounded to 9 decimals like the wire."""
        if self.kind == REFERENCE:
            return round9(
                nonconformity_score(
                    float(signals["D_hat"]), float(signals["coh_star"]), float(signals["r"]),
                    w_d=self.w_d, w_coh=self.w_coh, w_r=self.w_r, r0=self.r0, tol_coh=self.tol_coh,
                )
            )  # fmt: skip
        sides = self.side_terms(signals)
        total = 0.0
        for k, (weight, low) in enumerate(((self.w_d, self.lo_d), (self.w_coh, self.lo_coh), (self.w_r, self.lo_r))):
            total += weight * (2.0 * low * sides[2 * k] + 2.0 * (1.0 - low) * sides[2 * k + 1])
        return round9(total)


def fit_formula(
    spec: ScoreFormula, benign: Sequence[Mapping[str, Any]], anomalous: Sequence[Mapping[str, Any]] = ()
) -> ScoreFormula:
    """``spec`` fitted to one tenant: centre and spread from ``benign``, weights from both (``fitted`` kind).

    ``benign`` must be labels that never enter the tenant's calibration set (its fit fold, ``in_fit_fold``),
    and ``anomalous`` labels of any provenance (anomalous labels never calibrate): then the fitted formula is a
    function of data apart from the calibration set, the calibration scores and a new benign PCS's score stay
    exchangeable, and P(a benign PCS is escalated) ≤ delta still holds. Pure and deterministic.

    Weights (``fitted`` only, with MIN_FIT_ANOMALOUS anomalous and MIN_FIT_BENIGN benign labels): each term's
    separation, max(0, mean over anomalous − mean over benign) / pooled standard deviation, normalised to
    the sum of the global weights and pulled towards them by FIT_SHRINK labels' worth; and each signal's
    low-side share, the low side's separation over both sides' (each side's term on its own), pulled towards
    0.5 the same way.
    """
    if not spec.needs_fit:
        return spec
    fitted = spec
    if len(benign) >= MIN_FIT_BENIGN:
        columns = {name: np.array([float(s[name]) for s in benign]) for name in SCORE_SIGNALS}
        centre = {name: float(np.median(values)) for name, values in columns.items()}
        spread = {
            name: max(SPREAD_FLOOR[name], 1.4826 * float(np.median(np.abs(values - centre[name]))))
            for name, values in columns.items()
        }
        fitted = replace(
            fitted, c_d=centre["D_hat"], c_coh=centre["coh_star"], c_r=centre["r"],
            s_d=spread["D_hat"], s_coh=spread["coh_star"], s_r=spread["r"],
        )  # fmt: skip
    if spec.kind == FITTED and len(anomalous) >= MIN_FIT_ANOMALOUS and len(benign) >= MIN_FIT_BENIGN:
        good = np.array([fitted.terms(s) for s in benign])
        bad = np.array([fitted.terms(s) for s in anomalous])
        pooled = np.sqrt((good.var(axis=0) + bad.var(axis=0)) / 2.0) + 1e-9
        separation = np.maximum(0.0, bad.mean(axis=0) - good.mean(axis=0)) / pooled
        total = spec.w_d + spec.w_coh + spec.w_r
        if separation.sum() > 0 and total > 0:
            own = separation / separation.sum() * total
            share = len(anomalous) / (len(anomalous) + FIT_SHRINK)
            w_d, w_coh, w_r = share * own + (1 - share) * np.array([spec.w_d, spec.w_coh, spec.w_r])
            fitted = replace(fitted, w_d=round9(w_d), w_coh=round9(w_coh), w_r=round9(w_r))
        good_sides = np.array([fitted.side_terms(s) for s in benign])
        bad_sides = np.array([fitted.side_terms(s) for s in anomalous])
        pooled_sides = np.sqrt((good_sides.var(axis=0) + bad_sides.var(axis=0)) / 2.0) + 1e-9
        side_separation = np.maximum(0.0, bad_sides.mean(axis=0) - good_sides.mean(axis=0)) / pooled_sides
        share = len(anomalous) / (len(anomalous) + FIT_SHRINK)
        shares = {}
        for k, name in enumerate(SIDE_SHARES):
            low, high = side_separation[2 * k], side_separation[2 * k + 1]
            own = low / (low + high) if low + high > 0 else 0.5
            shares[name] = round9(share * own + (1 - share) * 0.5)
        fitted = replace(fitted, **shares)
    return replace(
        fitted, **{name: round9(getattr(fitted, name)) for name in ("c_d", "c_coh", "c_r", "s_d", "s_coh", "s_r")}
    )


def score_signals(pcs: Mapping[str, Any]) -> dict[str, float]:
    """The signals of a PCS that its score depends on, as a label keeps them."""
    return {name: float(pcs[name]) for name in SCORE_SIGNALS}
