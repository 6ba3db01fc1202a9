"""The drift and miscoverage tasks store reports from benign audit labels, alarm when warranted, stay quiet otherwise."""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from calibration import services, tasks
from calibration.models import DriftReport, MiscoverageReport, PerformanceReport
from flk_site.testing import reset_config_memos
from policy.models import VerifyParams

pytestmark = pytest.mark.django_db


def audit_labels(tenant: str, scores, *, start: int = 0, flagged=None, delta=0.05, snapshot_n=200, minutes=0):
    """Benign audit labels in label order, one a minute, as the review queue records them."""
    base = timezone.now() - timedelta(days=1) + timedelta(minutes=minutes)
    for i, score in enumerate(scores, start):
        services.record_label(
            tenant=tenant, pcs_id=f"{tenant}-audit-{i}", score=float(score), label="benign", provenance="audit",
            inclusion_probability=0.5, decision="accept",
            flagged=None if flagged is None else bool(flagged[i - start]), snapshot_n=snapshot_n, delta=delta,
            labelled_at=base + timedelta(minutes=i),
        )  # fmt: skip


def test_a_shift_of_the_benign_audit_scores_is_reported_as_drift(unsigned_default_tenant, caplog):
    rng = np.random.default_rng(7)
    audit_labels("acme", np.concatenate([rng.uniform(0.05, 0.35, 150), rng.uniform(0.25, 0.55, 150)]))
    with caplog.at_level(logging.WARNING, logger="flk.calibration"):
        tasks.check_drift.delay()
    report = DriftReport.objects.get(tenant="acme")
    assert report.drift_detected is True
    assert report.n_labels == 300
    assert report.martingale_max >= 1 / report.level == 100
    assert report.p_value == pytest.approx(1 / report.martingale_max)
    assert report.alarm_at is not None
    assert "calibration_drift_detected" in caplog.text


def test_stationary_benign_audit_scores_are_not_drift(unsigned_default_tenant, caplog):
    audit_labels("acme", np.random.default_rng(8).uniform(0.05, 0.35, 300))
    with caplog.at_level(logging.WARNING, logger="flk.calibration"):
        tasks.check_drift.delay()
    report = DriftReport.objects.get(tenant="acme")
    assert report.drift_detected is False
    assert report.p_value > report.level
    assert "calibration_drift_detected" not in caplog.text


def test_too_few_audit_labels_make_no_drift_report(unsigned_default_tenant, settings):
    settings.FLK_DRIFT_MIN_LABELS = 50
    audit_labels("quiet", [0.1 + i / 1000 for i in range(49)])
    services.record_label(tenant="quiet", pcs_id="esc", score=0.9, label="benign", provenance="escalation")
    tasks.check_drift.delay()
    assert not DriftReport.objects.exists()  # escalation labels are not part of the stream


def test_benign_audit_pcs_flagged_far_beyond_delta_raise_a_miscoverage_alarm(unsigned_default_tenant, caplog):
    flags = [True] * 40 + [False] * 160  # 0.2 where delta = 0.05
    audit_labels("acme", [0.1] * 200, flagged=flags, snapshot_n=1000)
    with caplog.at_level(logging.WARNING, logger="flk.calibration"):
        tasks.check_miscoverage.delay()
    report = MiscoverageReport.objects.get(tenant="acme")
    assert (report.flagged, report.considered) == (40, 200)
    assert report.rate == pytest.approx(0.2)
    assert report.ci_low > 0.05
    assert report.p_value < 1e-6 and report.alarm is True
    assert "calibration_miscoverage" in caplog.text
    assert PerformanceReport.objects.filter(tenant="acme").exists()


def test_flags_within_delta_raise_no_alarm(unsigned_default_tenant, caplog):
    audit_labels("acme", [0.1] * 200, flagged=[True] * 9 + [False] * 191)  # 0.045
    with caplog.at_level(logging.WARNING, logger="flk.calibration"):
        tasks.check_miscoverage.delay()
    report = MiscoverageReport.objects.get(tenant="acme")
    assert report.rate == pytest.approx(9 / 200)
    assert report.p_value > 0.5 and report.alarm is False
    assert "calibration_miscoverage" not in caplog.text


def test_escalations_outside_the_audit_and_failed_checks_are_not_counted(unsigned_default_tenant):
    audit_labels("acme", [0.1] * 100, flagged=[False] * 100)
    for i in range(30):  # benign escalations reviewed outside the audit sample: a selected sample
        services.record_label(tenant="acme", pcs_id=f"esc-{i}", score=0.9, label="benign", provenance="escalation",
                              decision="escalate", p_value=0.01, flagged=True, snapshot_n=200, delta=0.05)  # fmt: skip
    for i in range(10):  # audit samples escalated by a failed check while the conformal step did not flag them
        services.record_label(tenant="acme", pcs_id=f"check-{i}", score=0.2, label="benign", provenance="audit",
                              decision="escalate", p_value=0.4, flagged=False, snapshot_n=200, delta=0.05)  # fmt: skip
    services.record_label(tenant="acme", pcs_id="off", score=0.2, label="benign", provenance="audit")  # step off
    report = services.check_miscoverage(["acme"])[0]
    assert (report.flagged, report.considered) == (0, 110)
    assert report.alarm is False


def test_a_tenant_whose_audit_labels_stopped_still_gets_a_report(unsigned_default_tenant, settings):
    VerifyParams.objects.filter(is_active=True).update(audit_rate=0.0, bootstrap_audit_rate=0.0)
    reset_config_memos()
    audit_labels("acme", [0.1] * 20, flagged=[False] * 20)
    tasks.check_miscoverage.delay()
    report = MiscoverageReport.objects.get(tenant="acme")
    assert report.audit_alarm == "off"
