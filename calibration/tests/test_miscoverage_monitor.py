"""The miscoverage monitor alarms at most `level` of the time on a correctly working tenant and catches a breach.

Simulations of the pure functions: a correctly working tenant is benign scores (continuous, exchangeable), a
calibration set of n of them, and an audit window of m benign PCS flagged when their score exceeds the threshold.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from calibration.conformal import conformal_threshold
from calibration.monitors import (
    betabinomial_upper_p,
    clopper_pearson,
    conditional_miscoverage_beta,
    miscoverage_estimate,
)

LEVEL = 0.01
DELTA = 0.05


def within_level(alarms: int, runs: int, level: float) -> bool:
    """At most level, up to three Monte-Carlo standard errors."""
    return alarms / runs <= level + 3 * math.sqrt(level * (1 - level) / runs)


def alarm_rate(rng, *, n: int, m: int, runs: int, recalibrate_every: int | None = None) -> tuple[float, float]:
    """Share of runs alarmed by the beta-binomial test and by the plain binomial test, on a working tenant.

    With ``recalibrate_every``, the window's PCS are judged by a sequence of sets, each the newest n benign
    audit scores at its recalibration (the shipped hourly loop); otherwise by one set.
    """
    beta_binomial = binomial = 0
    for _ in range(runs):
        stream = rng.random(n + m)  # benign scores in arrival order; every one is audited
        flags = 0
        step = recalibrate_every or m
        for start in range(0, m, step):
            threshold = conformal_threshold(np.sort(stream[start : start + n]), DELTA)
            flags += int((stream[n + start : n + start + step] > threshold).sum())
        estimate = miscoverage_estimate(flags, m, delta=DELTA, snapshot_n=n)
        beta_binomial += estimate.p_value <= LEVEL
        binomial += estimate.binomial_p <= LEVEL
    return beta_binomial, binomial


@pytest.mark.parametrize(("n", "m"), [(100, 1000), (1000, 1400), (5000, 1400)])
def test_on_a_working_tenant_the_alarm_rate_is_at_most_its_level(n, m):
    runs = 4000
    alarms, _ = alarm_rate(np.random.default_rng(n + m), n=n, m=m, runs=runs)
    assert within_level(alarms, runs, LEVEL), alarms / runs


def test_recalibrating_within_the_window_keeps_the_alarm_rate_within_its_level():
    runs = 3000
    alarms, _ = alarm_rate(np.random.default_rng(3), n=200, m=1000, runs=runs, recalibrate_every=100)
    assert within_level(alarms, runs, LEVEL), alarms / runs


def test_the_plain_binomial_test_ignores_the_spread_of_one_calibration_set():
    # Why the alarm uses the beta-binomial law: with a small set and a large window the binomial test alarms on
    # a working tenant many times more often than its level (the issue measured 11 % at level 1 %).
    runs = 2000
    alarms, binomial = alarm_rate(np.random.default_rng(4), n=100, m=1000, runs=runs)
    assert binomial / runs > 10 * LEVEL
    assert within_level(alarms, runs, LEVEL)


@pytest.mark.parametrize(("n", "rate"), [(1000, 0.10), (5000, 0.09), (200, 0.15)])
def test_a_real_breach_is_caught(n, rate):
    rng = np.random.default_rng(n)
    m, runs = 1400, 500
    caught = sum(
        miscoverage_estimate(int(rng.binomial(m, rate)), m, delta=DELTA, snapshot_n=n).p_value <= LEVEL
        for _ in range(runs)
    )
    assert caught / runs >= 0.95


def test_the_rate_and_its_interval_are_the_audit_counts():
    estimate = miscoverage_estimate(7, 200, delta=DELTA, snapshot_n=400)
    exact = stats.binomtest(7, 200, DELTA, alternative="greater")
    interval = stats.binomtest(7, 200).proportion_ci(0.95, method="exact")
    assert estimate.rate == 7 / 200
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert estimate.binomial_p == pytest.approx(exact.pvalue)
    above = miscoverage_estimate(20, 200, delta=DELTA, snapshot_n=100)  # a rate of 0.1, in the upper tail
    assert above.binomial_p < LEVEL < above.p_value  # one set's spread makes the upper tail heavier


def test_without_labels_there_is_no_rate_and_no_evidence():
    estimate = miscoverage_estimate(0, 0, delta=DELTA, snapshot_n=100)
    assert (estimate.rate, estimate.ci_low, estimate.ci_high, estimate.p_value) == (None, 0.0, 1.0, 1.0)


def test_an_infinite_threshold_flags_nothing_so_one_flag_is_a_breach():
    assert conditional_miscoverage_beta(10, DELTA) == (0, 11)  # k = 11 > n
    assert betabinomial_upper_p(0, 50, 10, DELTA) == 1.0
    assert betabinomial_upper_p(1, 50, 10, DELTA) == 0.0


@given(n=st.integers(1, 3000), delta=st.sampled_from([0.01, 0.05, 0.1, 0.2]))
def test_the_conditional_miscoverage_has_mean_at_most_delta(n, delta):
    a, b = conditional_miscoverage_beta(n, delta)
    assert a + b == n + 1
    assert a / (n + 1) <= delta + 1e-12
    if a:
        assert a / (n + 1) >= delta - 1 / (n + 1) - 1e-12


@given(successes=st.integers(0, 300), extra=st.integers(0, 300))
def test_clopper_pearson_is_the_exact_interval(successes, extra):
    trials = successes + extra
    if trials == 0:
        assert clopper_pearson(0, 0) == (0.0, 1.0)
        return
    expected = stats.binomtest(successes, trials).proportion_ci(0.95, method="exact")
    assert clopper_pearson(successes, trials) == pytest.approx((expected.low, expected.high), abs=1e-9)


@given(flagged=st.integers(0, 200), n=st.integers(20, 2000))
def test_more_flags_never_make_the_p_value_larger(flagged, n):
    m = 200
    now = miscoverage_estimate(flagged, m, delta=DELTA, snapshot_n=n).p_value
    more = miscoverage_estimate(min(m, flagged + 1), m, delta=DELTA, snapshot_n=n).p_value
    assert 0.0 <= more <= now * (1 + 1e-9) and now <= 1.0  # equal up to rounding in the far tail
