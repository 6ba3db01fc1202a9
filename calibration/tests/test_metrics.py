"""/metrics carries each tenant's calibration size, threshold, snapshot age, drift martingale, miscoverage, audit
alarms and label completion, power and precision with their intervals."""

from __future__ import annotations

import base64
import math

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from calibration import services
from calibration.models import DriftReport, MiscoverageReport, PerformanceReport

pytestmark = pytest.mark.django_db
AUTH = ("scraper", "s3cret-scrape")


def scrape(client, settings) -> dict[tuple[str, ...], float]:
    settings.METRICS_USER, settings.METRICS_PASS = AUTH
    header = "Basic " + base64.b64encode(":".join(AUTH).encode()).decode()
    response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 200
    return {
        (s.name, s.labels.get("tenant", ""), *(v for k, v in sorted(s.labels.items()) if k != "tenant")): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
        if s.name.startswith(
            ("flk_calibration", "flk_drift", "flk_miscoverage", "flk_audit", "flk_power", "flk_precision")
        )
    }


def test_the_latest_snapshot_and_reports_of_each_tenant_are_exported(client, settings):
    for n in range(100):
        services.record_label(tenant="acme", pcs_id=f"p{n}", score=n / 100, label="benign", provenance="audit")
    services.recalibrate_tenant("acme", delta=0.05, n_min=100, params_version=1)
    services.recalibrate_tenant("tiny", delta=0.05, n_min=100, params_version=1)
    DriftReport.objects.create(
        tenant="acme", n_labels=400, martingale=150.0, martingale_max=180.0, p_value=1 / 180, level=0.01,
        drift_detected=True, alarm_at=timezone.now(),
    )  # fmt: skip
    MiscoverageReport.objects.create(
        tenant="acme", window_start=timezone.now(), flagged=3, considered=103, rate=3 / 103, ci_low=0.006,
        ci_high=0.083, delta=0.05, snapshot_n=100, binomial_p=0.8, p_value=0.85, adjusted_p=0.85, level=0.01,
        alarm=False, audit_alarm="stale", audit_detail="1 waiting", labelled=103, expired=2, waiting=7,
    )  # fmt: skip
    PerformanceReport.objects.create(
        tenant="acme", window_start=timezone.now(), power=0.8, power_ci_low=0.6, power_ci_high=0.92, power_labels=30,
        power_effective_n=25.0, precision=None, precision_labels=0,
    )  # fmt: skip
    samples = scrape(client, settings)
    assert samples[("flk_calibration_size", "acme")] == 100
    assert samples[("flk_calibration_threshold", "acme")] == 0.95
    assert 0 <= samples[("flk_calibration_snapshot_age_seconds", "acme")] < 60
    assert math.isinf(samples[("flk_calibration_threshold", "tiny")])
    assert samples[("flk_drift_martingale", "acme")] == 150.0
    assert samples[("flk_drift_p_value", "acme")] == pytest.approx(1 / 180)
    assert samples[("flk_drift_detected", "acme")] == 1
    assert samples[("flk_miscoverage_rate", "acme")] == pytest.approx(3 / 103)
    assert (samples[("flk_miscoverage_rate_ci_low", "acme")], samples[("flk_miscoverage_rate_ci_high", "acme")]) == (
        0.006, 0.083,
    )  # fmt: skip
    assert samples[("flk_miscoverage_p_value", "acme")] == 0.85
    assert samples[("flk_miscoverage_alarm", "acme")] == 0
    assert samples[("flk_audit_alarm", "acme", "stale")] == 1
    assert samples[("flk_audit_alarm", "acme", "off")] == 0
    assert samples[("flk_audit_alarm", "acme", "silent")] == 0
    assert [samples[("flk_audit_samples", "acme", state)] for state in ("labelled", "expired", "waiting")] == [
        103,
        2,
        7,
    ]
    assert (samples[("flk_power", "acme")], samples[("flk_power_ci_low", "acme")]) == (0.8, 0.6)
    assert samples[("flk_power_ci_high", "acme")] == 0.92
    assert samples[("flk_power_effective_n", "acme")] == 25.0
    assert ("flk_precision", "acme") not in samples  # no estimate without labels: absent, not zero
    assert samples[("flk_precision_effective_n", "acme")] == 0.0
