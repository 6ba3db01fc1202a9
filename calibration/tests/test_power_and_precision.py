"""Power and precision per tenant from audit labels weighted by 1/inclusion probability, with intervals."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from scipy import stats

from calibration import services
from calibration.monitors import AuditOutcome, performance, weighted_share

pytestmark = pytest.mark.django_db


def outcome(anomalous: bool, accepted: bool, probability: float = 0.02) -> AuditOutcome:
    return AuditOutcome(anomalous=anomalous, accepted=accepted, inclusion_probability=probability)


def test_with_equal_weights_power_is_the_share_caught_and_its_interval_is_clopper_pearson():
    outcomes = [outcome(True, False)] * 30 + [outcome(True, True)] * 10 + [outcome(False, False)] * 10
    outcomes += [outcome(False, True)] * 500
    figures = performance(outcomes)
    assert figures.power.estimate == pytest.approx(0.75)  # 30 of 40 anomalous PCS not accepted
    assert figures.power.labels == 40 and figures.power.effective_n == pytest.approx(40)
    exact = stats.binomtest(30, 40).proportion_ci(0.95, method="exact")
    assert (figures.power.ci_low, figures.power.ci_high) == pytest.approx((exact.low, exact.high))
    assert figures.precision.estimate == pytest.approx(0.75)  # 30 of 40 not accepted are anomalous
    assert figures.precision.labels == 40


def test_labels_drawn_more_often_weigh_less():
    # Bootstrap: 10 anomalous PCS drawn at 0.5 (8 caught) stand for 20; 10 drawn at 0.05 (2 caught) for 200.
    outcomes = [outcome(True, i >= 8, 0.5) for i in range(10)] + [outcome(True, i >= 2, 0.05) for i in range(10)]
    power = performance(outcomes).power
    assert power.estimate == pytest.approx((8 * 2 + 2 * 20) / (10 * 2 + 10 * 20))
    assert power.effective_n == pytest.approx(220**2 / (10 * 4 + 10 * 400))  # Kish: about 12 of 20 labels
    assert power.ci_low < power.estimate < power.ci_high


def test_without_anomalous_labels_there_is_no_power():
    figures = performance([outcome(False, True)] * 5)
    assert figures.power.estimate is None and (figures.power.ci_low, figures.power.ci_high) == (0.0, 1.0)
    assert figures.precision.estimate is None


def test_the_weighted_interval_covers_the_true_share_about_as_often_as_it_says():
    rng = np.random.default_rng(31)
    covered, runs = 0, 1000
    for _ in range(runs):
        probability = np.where(rng.random(300) < 0.5, 0.2, 0.02)  # a young tenant's mix of audit shares
        hits = rng.random(300) < 0.3
        share = weighted_share(hits, 1.0 / probability)
        truth = 0.3
        covered += share.ci_low <= truth <= share.ci_high
    assert covered / runs >= 0.93


def record(tenant: str, pcs_id: str, label: str, decision: str, probability: float | None = 0.1, **extra) -> None:
    services.record_label(tenant=tenant, pcs_id=pcs_id, label=label, decision=decision, score=0.1,
                          inclusion_probability=probability, **{"provenance": "audit", **extra})  # fmt: skip


def test_the_service_reads_audit_labels_only(unsigned_default_tenant):
    for i in range(6):
        record("acme", f"a{i}", "anomalous", "escalate" if i < 4 else "accept")
    for i in range(2):
        record("acme", f"b{i}", "benign", "reject")
    record("acme", "esc", "anomalous", "escalate", probability=None, provenance="escalation")  # outside the sample
    record("acme", "imported", "anomalous", "accept", probability=None, provenance="imported")
    figures = services.performance_figures("acme")
    assert figures.power.estimate == pytest.approx(4 / 6)
    assert figures.precision.estimate == pytest.approx(4 / 6)
    row = services.record_performance("acme")
    assert (row.power, row.power_labels, row.precision_labels) == (pytest.approx(4 / 6), 6, 6)


def test_recalibrate_prints_power_and_precision_per_tenant(unsigned_default_tenant):
    for i in range(8):
        record("acme", f"a{i}", "anomalous", "escalate" if i < 6 else "accept")
    record("quiet", "q", "benign", "accept")
    out = StringIO()
    call_command("recalibrate", stdout=out)
    low, high = stats.binomtest(6, 8).proportion_ci(0.95, method="exact")
    text = out.getvalue()
    assert f"acme: power 0.750 [{low:.3f}, {high:.3f}] (8 audit labels, n_eff 8.0); precision 1.000" in text
    assert "quiet: power n/a (no anomalous audit labels); precision n/a" in text
