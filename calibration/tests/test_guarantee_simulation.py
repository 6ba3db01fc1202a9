"""The split-conformal guarantee, simulated: benign PCS are escalated at a rate in [delta - 1/(n+1), delta].

For each (n, delta) we draw TRIALS independent calibration sets of n exchangeable benign scores and, for each,
TEST_PER_TRIAL fresh benign scores, and count how often a fresh score's p-value is <= delta.

Tolerance. Conditional on the calibration set the escalation rate is a Beta(n+1-k, k) random variable
(k the conformal rank), whose standard deviation sqrt(a(n+1-a)/((n+1)^2 (n+2))) ~ sqrt(delta(1-delta)/n) dominates
the binomial noise of the test points. The empirical rate over TRIALS sets therefore has a standard error
of at most sqrt(delta(1-delta)/n / TRIALS + delta(1-delta)/(TRIALS * TEST_PER_TRIAL)); we allow 4 standard
errors on each side of the interval (a false failure about once in 30,000 runs per case).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration.conformal import conformal_threshold

TRIALS = 2000
TEST_PER_TRIAL = 200


@pytest.mark.parametrize("n", [100, 500, 2000])
@pytest.mark.parametrize("delta", [0.05, 0.1])
@pytest.mark.parametrize("distribution", ["gamma", "beta"])
def test_benign_pcs_are_escalated_at_rate_at_most_delta(n, delta, distribution):
    rng = np.random.default_rng(n * 1000 + int(delta * 100) + len(distribution))
    draw = (lambda size: rng.gamma(2.0, 0.1, size)) if distribution == "gamma" else (lambda size: rng.beta(2, 5, size))
    calibration = np.sort(draw((TRIALS, n)), axis=1)
    fresh = draw((TRIALS, TEST_PER_TRIAL))
    thresholds = np.array([conformal_threshold(row, delta) for row in calibration])
    escalated = fresh > thresholds[:, None]  # s > threshold  <=>  p_value <= delta
    rate = float(escalated.mean())

    variance = delta * (1 - delta)
    tolerance = 4 * math.sqrt(variance / n / TRIALS + variance / (TRIALS * TEST_PER_TRIAL))
    low, high = delta - 1 / (n + 1), delta
    assert low - tolerance <= rate <= high + tolerance, (rate, low, high, tolerance)
