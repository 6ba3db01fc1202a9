"""The drift and miscoverage tasks store reports, raise an alarm when warranted and stay quiet otherwise."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from calibration import services, tasks
from calibration.models import GLOBAL_SET, DriftReport, MiscoverageReport
from flk_site.testing import make_pcs
from ingest.models import VerifyParams

pytestmark = pytest.mark.django_db


def label(tenant: str, scores, *, provenance: str = "audit", start: int = 0) -> None:
    for n, score in enumerate(scores, start):
        services.record_label(
            tenant=tenant,
            pcs_id=f"{tenant}-{provenance}-{n}",
            score=float(score),
            label="benign",
            provenance=provenance,
        )


def calibrate(tenant: str) -> None:
    for name in (tenant, GLOBAL_SET):
        services.recalibrate_tenant(name, delta=0.05, n_min=100, params_version=1)


def test_traffic_unlike_the_calibration_set_is_reported_as_drift(unsigned_default_tenant, submit, caplog):
    label("default", np.linspace(0.05, 0.15, 200))  # traffic scores (~0.30 and up) are far above every one
    calibrate("default")
    for coh in (0.95, 0.9, 0.85, 0.8, 0.75):
        submit(make_pcs(coh_star=coh, r=0.65))
    with caplog.at_level(logging.WARNING, logger="flk.calibration"):
        tasks.check_drift.delay()
    report = DriftReport.objects.get(tenant="default")
    assert report.drift_detected is True
    assert report.n_recent == 5
    assert report.n_calibration == 200
    assert report.p_value < 0.01
    assert "calibration_drift_detected" in caplog.text


def test_traffic_like_the_calibration_set_is_not_drift(unsigned_default_tenant, submit, caplog):
    scores = [submit(make_pcs(coh_star=c, r=0.65)).json()["score"] for c in np.linspace(0.72, 0.99, 20)]
    label("default", scores * 10)
    calibrate("default")
    with caplog.at_level(logging.WARNING, logger="flk.calibration"):
        tasks.check_drift.delay()
    report = DriftReport.objects.get(tenant="default")
    assert report.drift_detected is False
    assert "calibration_drift_detected" not in caplog.text


def test_without_calibration_or_traffic_no_drift_report_is_made(unsigned_default_tenant):
    label("quiet", [0.1] * 150)
    calibrate("quiet")
    tasks.check_drift.delay()
    assert not DriftReport.objects.exists()


def test_benign_pcs_escalated_far_beyond_delta_raise_a_miscoverage_alarm(unsigned_default_tenant, caplog):
    VerifyParams.objects.filter(is_active=True).update(audit_rate=0.5, delta=0.05)
    label("acme", [0.1] * 40)  # 40 audit labels at rate 0.5 stand for 80 accepted benign PCS
    label("acme", [0.6] * 20, provenance="escalation")  # 20 escalated benign: 20 / 100 = 0.2 > 0.05
    with caplog.at_level(logging.WARNING, logger="flk.calibration"):
        tasks.check_miscoverage.delay()
    report = MiscoverageReport.objects.get(tenant="acme")
    assert (report.escalated, report.benign_audit, report.total) == (20, 40, 100)
    assert report.rate == pytest.approx(0.2)
    assert report.p_value < 0.001
    assert "calibration_miscoverage" in caplog.text


def test_escalations_within_delta_raise_no_alarm(unsigned_default_tenant, caplog):
    VerifyParams.objects.filter(is_active=True).update(audit_rate=0.5, delta=0.05)
    label("acme", [0.1] * 100)
    label("acme", [0.6] * 5, provenance="escalation")  # 5 / 205
    with caplog.at_level(logging.WARNING, logger="flk.calibration"):
        tasks.check_miscoverage.delay()
    report = MiscoverageReport.objects.get(tenant="acme")
    assert report.rate == pytest.approx(5 / 205)
    assert report.p_value > 0.5
    assert "calibration_miscoverage" not in caplog.text
