"""An audit that is off, silent or stale raises an alarm of its own: a report kind, a log event and a metric."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from calibration import services, tasks
from calibration.models import MiscoverageReport
from flk_site.testing import make_pcs, reset_config_memos
from ingest.models import PcsRecord
from policy.models import VerifyParams

pytestmark = pytest.mark.django_db


def audit_share(rate: float) -> None:
    VerifyParams.objects.filter(is_active=True).update(audit_rate=rate, bootstrap_audit_rate=rate)
    reset_config_memos()


def label(pcs_id: str, *, hours_ago: float = 0.0) -> None:
    services.record_label(tenant="default", pcs_id=pcs_id, score=0.1, label="benign", provenance="audit",
                          flagged=False, snapshot_n=200, delta=0.05,
                          labelled_at=timezone.now() - timedelta(hours=hours_ago))  # fmt: skip


def test_an_audit_sample_waiting_longer_than_allowed_is_a_stale_audit(
    unsigned_default_tenant, submit, settings, caplog
):
    settings.FLK_AUDIT_STALE_HOURS = 72
    audit_share(1.0)
    pcs = make_pcs()
    submit(pcs)
    PcsRecord.objects.filter(pcs_id=pcs["pcs_id"]).update(received_at=timezone.now() - timedelta(hours=80))
    label("earlier")
    with caplog.at_level(logging.WARNING, logger="flk.calibration"):
        tasks.check_miscoverage.delay()
    report = MiscoverageReport.objects.get(tenant="default")
    assert report.audit_alarm == "stale"
    assert "oldest for 80 h (allowed 72 h)" in report.audit_detail
    assert (report.labelled, report.expired, report.waiting) == (1, 0, 1)
    assert "calibration_audit_alarm" in caplog.text


def test_an_expired_audit_sample_is_not_stale(unsigned_default_tenant, submit):
    audit_share(1.0)
    pcs = make_pcs()
    submit(pcs)
    PcsRecord.objects.filter(pcs_id=pcs["pcs_id"]).update(received_at=timezone.now() - timedelta(days=10))
    services.expire_audits([("default", pcs["pcs_id"])], reason="lost")
    label("earlier")
    report = services.check_miscoverage(["default"])[0]
    assert report.audit_alarm == ""
    assert (report.labelled, report.expired, report.waiting) == (1, 1, 0)


def test_no_audit_label_for_days_while_traffic_flows_is_a_silent_audit(unsigned_default_tenant, submit, settings):
    settings.FLK_AUDIT_SILENT_HOURS = 48
    audit_share(0.5)  # 10 PCS in 48 h: 5 audit samples expected, none labelled
    for _ in range(10):
        submit(make_pcs())
    label("long-ago", hours_ago=60)
    report = services.check_miscoverage(["default"])[0]
    assert report.audit_alarm == "silent"
    assert report.audit_detail.startswith("no audit label in 48 h while 10+ PCS were received")


def test_little_traffic_without_labels_is_not_yet_silence(unsigned_default_tenant, submit):
    audit_share(0.5)
    for _ in range(9):  # 4.5 audit samples expected: no label at all is still plausible
        submit(make_pcs())
    label("long-ago", hours_ago=60)
    assert services.check_miscoverage(["default"])[0].audit_alarm == ""


def test_an_audit_share_of_zero_is_an_audit_that_is_off(unsigned_default_tenant):
    audit_share(0.0)
    label("earlier")
    report = services.check_miscoverage(["default"])[0]
    assert report.audit_alarm == "off"


def test_a_tenant_labelling_its_audit_samples_raises_no_audit_alarm(unsigned_default_tenant, submit, caplog):
    audit_share(0.5)
    for _ in range(10):
        submit(make_pcs())
    for pcs_id in PcsRecord.objects.filter(audit_sample=True).values_list("pcs_id", flat=True):
        label(pcs_id)
    with caplog.at_level(logging.WARNING, logger="flk.calibration"):
        report = services.check_miscoverage(["default"])[0]
    assert report.audit_alarm == "" and report.waiting == 0
    assert "calibration_audit_alarm" not in caplog.text


def test_a_tenant_with_only_waiting_audit_samples_is_monitored(unsigned_default_tenant, submit):
    audit_share(1.0)
    submit(make_pcs())
    assert "default" in services.monitored_tenants()
