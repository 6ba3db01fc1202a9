"""Benjamini–Hochberg across tenants: false alarms among alarms stay within FLK_MISCOVERAGE_LEVEL."""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from calibration import services
from calibration.monitors import benjamini_hochberg, conditional_miscoverage_beta, miscoverage_estimate

LEVEL = 0.05
DELTA = 0.05


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40), st.sampled_from([0.01, 0.05, 0.2]))
def test_the_adjusted_p_values_are_scipys_and_rejections_are_those_below_the_level(p_values, level):
    rejected, adjusted = benjamini_hochberg(p_values, level)
    assert adjusted == pytest.approx(list(stats.false_discovery_control(p_values, method="bh")), abs=1e-12)
    assert rejected == [q <= level for q in adjusted]
    # The step-up rule: reject the k smallest, k the largest with p_(k) <= k·level/m.
    ordered = sorted(p_values)
    k = max((i for i in range(1, len(ordered) + 1) if ordered[i - 1] <= i * level / len(ordered)), default=0)
    assert sum(rejected) == k


N, M = 500, 700  # calibration size and benign audit labels in the window, per tenant
# The beta-binomial p-value of every possible count, computed once: the simulations only index it.
P_OF_COUNT = [miscoverage_estimate(x, M, delta=DELTA, snapshot_n=N).p_value for x in range(M + 1)]


def tenant_p_value(rng, breached: bool) -> float:
    """One tenant's p-value: a working one draws its set's miscoverage, a breached one runs at 2·delta."""
    a, b = conditional_miscoverage_beta(N, DELTA)
    rate = 2 * DELTA if breached else rng.beta(a, b)
    return P_OF_COUNT[int(rng.binomial(M, rate))]


def test_across_working_tenants_any_alarm_at_all_has_probability_at_most_the_level():
    rng = np.random.default_rng(21)
    runs, tenants = 4000, 20
    any_alarm = 0
    for _ in range(runs):
        p = [tenant_p_value(rng, False) for _ in range(tenants)]
        any_alarm += any(benjamini_hochberg(p, LEVEL)[0])
    assert any_alarm / runs <= LEVEL + 3 * np.sqrt(LEVEL * (1 - LEVEL) / runs)


def test_with_some_breached_tenants_the_false_discovery_rate_is_at_most_the_level_and_they_are_found():
    rng = np.random.default_rng(22)
    runs, tenants, breached = 2000, 20, set(range(4))
    proportions, found = [], []
    for _ in range(runs):
        p = [tenant_p_value(rng, i in breached) for i in range(tenants)]
        rejected = benjamini_hochberg(p, LEVEL)[0]
        alarms = [i for i, r in enumerate(rejected) if r]
        proportions.append(sum(i not in breached for i in alarms) / max(1, len(alarms)))
        found.append(sum(i in breached for i in alarms) / len(breached))
    assert np.mean(proportions) <= LEVEL + 3 * np.std(proportions) / np.sqrt(runs)
    assert np.mean(found) >= 0.9  # a rate of 2·delta is found in about 92 % of tenant-runs


@pytest.mark.django_db
def test_the_task_alarms_on_the_breached_tenant_only(unsigned_default_tenant, caplog):
    when = timezone.now() - timedelta(hours=1)
    for t in range(6):
        tenant = f"t{t}"
        flagged = 40 if t == 0 else 9  # 0.2 against 0.045 of 200
        for i in range(200):
            services.record_label(tenant=tenant, pcs_id=f"{tenant}-{i}", score=0.1, label="benign",
                                  provenance="audit", flagged=i < flagged, snapshot_n=1000, delta=DELTA,
                                  labelled_at=when)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="flk.calibration"):
        reports = {r.tenant: r for r in services.check_miscoverage()}
    assert [name for name, r in sorted(reports.items()) if r.alarm] == ["t0"]
    assert reports["t0"].adjusted_p == pytest.approx(min(1.0, reports["t0"].p_value * 6))
    assert all(r.adjusted_p >= r.p_value for r in reports.values())
    assert caplog.text.count("calibration_miscoverage") == 1
