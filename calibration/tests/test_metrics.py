"""/metrics carries each tenant's calibration size, threshold, snapshot age, drift p-value and miscoverage."""

from __future__ import annotations

import base64
import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from calibration import services
from calibration.models import DriftReport, MiscoverageReport

pytestmark = pytest.mark.django_db
AUTH = ("scraper", "s3cret-scrape")


def scrape(client, settings) -> dict[tuple[str, str], float]:
    settings.METRICS_USER, settings.METRICS_PASS = AUTH
    header = "Basic " + base64.b64encode(":".join(AUTH).encode()).decode()
    response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 200
    return {
        (s.name, s.labels.get("tenant", "")): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
        if s.name.startswith(("flk_calibration", "flk_drift", "flk_miscoverage"))
    }


def test_the_latest_snapshot_and_reports_of_each_tenant_are_exported(client, settings):
    for n in range(100):
        services.record_label(tenant="acme", pcs_id=f"p{n}", score=n / 100, label="benign", provenance="audit")
    services.recalibrate_tenant("acme", delta=0.05, n_min=100, params_version=1)
    services.recalibrate_tenant("tiny", delta=0.05, n_min=100, params_version=1)
    DriftReport.objects.create(
        tenant="acme", n_recent=50, n_calibration=100, statistic=0.4, p_value=0.001, level=0.01, drift_detected=True
    )
    MiscoverageReport.objects.create(
        tenant="acme", escalated=3, benign_audit=2, total=103, rate=3 / 103, delta=0.05, p_value=0.8
    )
    samples = scrape(client, settings)
    assert samples[("flk_calibration_size", "acme")] == 100
    assert samples[("flk_calibration_threshold", "acme")] == 0.95
    assert 0 <= samples[("flk_calibration_snapshot_age_seconds", "acme")] < 60
    assert math.isinf(samples[("flk_calibration_threshold", "tiny")])
    assert samples[("flk_drift_p_value", "acme")] == 0.001
    assert samples[("flk_drift_detected", "acme")] == 1
    assert samples[("flk_miscoverage_rate", "acme")] == pytest.approx(3 / 103)
