"""Split conformal prediction over nonconformity scores: thresholds and p-values.

The guarantee (DESIGN.md section 7). Let s_1..s_n be the scores of PCS labelled *benign* for a tenant and
s the score of a new benign PCS, all exchangeable (the audit sample is drawn at random for exactly this
reason). Then P(p_value(scores, s) <= delta) <= delta: **a benign PCS is escalated with probability at
most delta**, averaged over the draw of the calibration set and the new PCS. With continuous scores the
rate is also at least delta - 1/(n+1). That is all it says. It does not bound the chance of accepting an
anomalous PCS (that is the *power*, measured from anomalous audit labels and reported, never guaranteed), and
it does not hold for a tenant whose traffic drifted away from its calibration set (the drift martingale and the
miscoverage monitor in ``calibration.monitors`` watch for that).

Pure functions over values: no ORM, no settings.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from calibration.scoring import ScoreFormula

# (n+1)(1-delta) computed in binary floating point can land a hair above an integer (20 * 0.95 ->
# 19.000000000000004); the rank is meant for the decimal delta an admin typed, so round that noise away.
_RANK_EPSILON = 1e-9


def conformal_rank(n: int, delta: float) -> int:
    """The rank k = ceil((n+1)(1-delta)) of the threshold among n calibration scores (may exceed n)."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    if n < 0:
        raise ValueError("n must be non-negative")
    return max(1, math.ceil((n + 1) * (1.0 - delta) - _RANK_EPSILON))


def _as_sorted(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(scores, dtype=float)
    if array.ndim != 1:
        raise ValueError("scores must be one-dimensional")
    if np.isnan(array).any():
        raise ValueError("scores must not contain NaN")
    if array.size > 1 and not bool(np.all(array[:-1] <= array[1:])):
        array = np.sort(array)
    return array


def conformal_threshold(scores: Sequence[float] | np.ndarray, delta: float) -> float:
    """The split-conformal threshold: the ceil((n+1)(1-delta))-th smallest score, ``inf`` if that rank > n.

    A new score s is escalated at level delta exactly when s > threshold, equivalently when
    ``p_value(scores, s) <= delta``; under exchangeability a benign PCS is escalated with probability at most
    delta. Ties count with their multiplicity (the k-th smallest of the multiset). Already-sorted input is
    used as is (one O(n) check); unsorted input is sorted first.
    """
    ordered = _as_sorted(scores)
    k = conformal_rank(ordered.size, delta)
    if k > ordered.size:
        return math.inf
    return float(ordered[k - 1])


def p_value_sorted(sorted_scores: Sequence[float] | np.ndarray, s: float) -> float:
    """``p_value`` over scores already sorted ascending: one binary search, O(log n)."""
    n = len(sorted_scores)
    at_least = n - bisect_left(sorted_scores, s)  # #{scores >= s}; ties with s count, so the test is exact
    return (1 + at_least) / (n + 1)


def p_value(scores: Sequence[float] | np.ndarray, s: float) -> float:
    """The conformal p-value ``(1 + #{scores >= s}) / (n + 1)`` of a new score s.

    Exact for ties (a calibration score equal to s counts). For a benign s exchangeable with the scores,
    P(p_value <= delta) <= delta for every delta: escalating when p <= delta escalates a benign PCS with
    probability at most delta. It is not the probability that the PCS is anomalous. O(log n) per query
    on a sorted array (``p_value_sorted``); unsorted input is sorted first.
    """
    if math.isnan(s):
        raise ValueError("the score must not be NaN")
    return p_value_sorted(_as_sorted(scores), s)


@dataclass(frozen=True)
class SnapshotValues:
    """One calibration snapshot detached from its row: what the request path decides with."""

    id: int
    tenant: str
    n: int
    delta: float
    threshold: float
    scores: tuple[float, ...]  # sorted ascending, for O(log n) p-values
    source: str  # "own" (the tenant's labels) or "global" (the fallback set)
    created_at: datetime
    params_version: int
    content_hash: str = ""
    formula: ScoreFormula | None = None  # the formula of ``scores``; None for snapshots older than formula keys

    def p_value(self, s: float) -> float:
        return p_value_sorted(self.scores, s)
