"""Theil–Sen estimate of the scaling dimension D̂ from box counts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def theil_sen_dhat(scales: Sequence[int], counts: Mapping[str, int]) -> float:
    """Median of the pairwise slopes of log2(N_j) against log2(scale).

    ``counts`` is keyed by the scale written as a decimal string (the wire form of ``N_j``). The median
    is the true median: the mean of the two middle slopes when the number of pairs is even. Needs at
    least two distinct scales and positive counts; the schema guarantees both before this is called.
    """
    xs = [math.log2(s) for s in scales]
    ys = [math.log2(counts[str(s)]) for s in scales]
    slopes = sorted((ys[j] - ys[i]) / (xs[j] - xs[i]) for i in range(len(xs)) for j in range(i + 1, len(xs)))
    if not slopes:
        raise ValueError("Theil–Sen needs at least two scales")
    mid = len(slopes) // 2
    if len(slopes) % 2:
        return slopes[mid]
    return (slopes[mid - 1] + slopes[mid]) / 2.0
