"""Calibration metrics, read from the database at scrape time (one collector, registered in FLK_METRICS_COLLECTORS).

Snapshots and reports are written by tasks in other processes, so the values are read where they are stored
rather than kept in per-process gauges. Three small queries per scrape, one row per tenant each.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

from django.db.models import Max
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from calibration.models import CalibrationSnapshot, DriftReport, MiscoverageReport

log = logging.getLogger("flk.calibration")


def _latest(model):
    newest = model.objects.values("tenant").annotate(newest=Max("id")).values("newest")
    return model.objects.filter(id__in=newest)


class CalibrationCollector:
    def collect(self) -> Iterator[Metric]:
        size = GaugeMetricFamily("flk_calibration_size", "Benign scores in the latest snapshot", labels=["tenant"])
        threshold = GaugeMetricFamily(
            "flk_calibration_threshold", "Conformal threshold of the latest snapshot (+Inf: too few)", labels=["tenant"]
        )
        age = GaugeMetricFamily(
            "flk_calibration_snapshot_age_seconds", "Seconds since the latest snapshot", labels=["tenant"]
        )
        drift_p = GaugeMetricFamily("flk_drift_p_value", "KS p-value of the latest drift check", labels=["tenant"])
        drift = GaugeMetricFamily(
            "flk_drift_detected", "1 when the latest drift check fell below its level", labels=["tenant"]
        )
        miscoverage = GaugeMetricFamily(
            "flk_miscoverage_rate", "Estimated share of benign PCS escalated (target: at most delta)", labels=["tenant"]
        )
        now = timezone.now()
        for row in _latest(CalibrationSnapshot).only("tenant", "n", "threshold", "created_at"):
            size.add_metric([row.tenant], row.n)
            threshold.add_metric([row.tenant], math.inf if row.threshold is None else row.threshold)
            age.add_metric([row.tenant], (now - row.created_at).total_seconds())
        for row in _latest(DriftReport):
            drift_p.add_metric([row.tenant], row.p_value)
            drift.add_metric([row.tenant], 1.0 if row.drift_detected else 0.0)
        for row in _latest(MiscoverageReport):
            miscoverage.add_metric([row.tenant], row.rate)
        yield from (size, threshold, age, drift_p, drift, miscoverage)

    def describe(self) -> list[Metric]:
        return []


def calibration_collector() -> CalibrationCollector:
    return CalibrationCollector()
