"""Calibration metrics, read from the database at scrape time (one collector, registered in FLK_METRICS_COLLECTORS).

Snapshots and reports are written by tasks in other processes, so the values are read where they are stored
rather than kept in per-process gauges: any gunicorn worker answers the same (prometheus_client's multiprocess
files are for counters of the request path, ingest/metrics.py). Four small queries per scrape, one row per tenant
each. An alert on ``flk_drift_detected``, ``flk_miscoverage_alarm`` or ``flk_audit_alarm`` is the page.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

from django.db.models import Max
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from calibration.models import AuditAlarm, CalibrationSnapshot, DriftReport, MiscoverageReport, PerformanceReport

log = logging.getLogger("flk.calibration")


def _latest(model):
    newest = model.objects.values("tenant").annotate(newest=Max("id")).values("newest")
    return model.objects.filter(id__in=newest)


def _gauge(name: str, documentation: str, labels: tuple[str, ...] = ("tenant",)) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class CalibrationCollector:
    def collect(self) -> Iterator[Metric]:
        size = _gauge("flk_calibration_size", "Benign scores in the latest snapshot")
        threshold = _gauge("flk_calibration_threshold", "Conformal threshold of the latest snapshot (+Inf: too few)")
        age = _gauge("flk_calibration_snapshot_age_seconds", "Seconds since the latest snapshot")
        martingale = _gauge("flk_drift_martingale", "Drift martingale over benign audit scores (alarm at 1/level)")
        drift_p = _gauge("flk_drift_p_value", "1 / running max of the drift martingale (anytime-valid p-value)")
        drift = _gauge("flk_drift_detected", "1 while the drift martingale's alarm is raised")
        miscoverage = _gauge("flk_miscoverage_rate", "Share of benign audit PCS flagged by the conformal step")
        miscoverage_low = _gauge("flk_miscoverage_rate_ci_low", "Clopper-Pearson 95 % lower bound of the rate")
        miscoverage_high = _gauge("flk_miscoverage_rate_ci_high", "Clopper-Pearson 95 % upper bound of the rate")
        miscoverage_p = _gauge("flk_miscoverage_p_value", "Beta-binomial p-value of rate <= delta")
        miscoverage_alarm = _gauge("flk_miscoverage_alarm", "1 when Benjamini-Hochberg across tenants flags the rate")
        audit_alarm = _gauge(
            "flk_audit_alarm", "1 when the audit is off, silent or stale (kind label)", ("tenant", "kind")
        )
        audit_samples = _gauge(
            "flk_audit_samples", "Audit samples labelled, expired and waiting at the last check", ("tenant", "state")
        )
        power = _gauge("flk_power", "Share of anomalous PCS not accepted (Horvitz-Thompson, audit labels)")
        power_low = _gauge("flk_power_ci_low", "95 % lower bound of power (Clopper-Pearson, Kish n_eff)")
        power_high = _gauge("flk_power_ci_high", "95 % upper bound of power")
        power_n = _gauge("flk_power_effective_n", "Kish effective sample size behind power")
        precision = _gauge("flk_precision", "Share of not-accepted PCS that are anomalous (Horvitz-Thompson)")
        precision_low = _gauge("flk_precision_ci_low", "95 % lower bound of precision")
        precision_high = _gauge("flk_precision_ci_high", "95 % upper bound of precision")
        precision_n = _gauge("flk_precision_effective_n", "Kish effective sample size behind precision")
        now = timezone.now()
        for row in _latest(CalibrationSnapshot).only("tenant", "n", "threshold", "created_at"):
            size.add_metric([row.tenant], row.n)
            threshold.add_metric([row.tenant], math.inf if row.threshold is None else row.threshold)
            age.add_metric([row.tenant], (now - row.created_at).total_seconds())
        for row in _latest(DriftReport):
            martingale.add_metric([row.tenant], row.martingale)
            drift_p.add_metric([row.tenant], row.p_value)
            drift.add_metric([row.tenant], 1.0 if row.drift_detected else 0.0)
        for row in _latest(MiscoverageReport):
            if row.rate is not None:
                miscoverage.add_metric([row.tenant], row.rate)
                miscoverage_low.add_metric([row.tenant], row.ci_low)
                miscoverage_high.add_metric([row.tenant], row.ci_high)
                miscoverage_p.add_metric([row.tenant], row.p_value)
            miscoverage_alarm.add_metric([row.tenant], 1.0 if row.alarm else 0.0)
            for kind in (AuditAlarm.OFF, AuditAlarm.SILENT, AuditAlarm.STALE):
                audit_alarm.add_metric([row.tenant, kind], 1.0 if row.audit_alarm == kind else 0.0)
            for state in ("labelled", "expired", "waiting"):
                audit_samples.add_metric([row.tenant, state], getattr(row, state))
        for row in _latest(PerformanceReport):
            if row.power is not None:
                power.add_metric([row.tenant], row.power)
                power_low.add_metric([row.tenant], row.power_ci_low)
                power_high.add_metric([row.tenant], row.power_ci_high)
            power_n.add_metric([row.tenant], row.power_effective_n)
            if row.precision is not None:
                precision.add_metric([row.tenant], row.precision)
                precision_low.add_metric([row.tenant], row.precision_ci_low)
                precision_high.add_metric([row.tenant], row.precision_ci_high)
            precision_n.add_metric([row.tenant], row.precision_effective_n)
        yield from (size, threshold, age, martingale, drift_p, drift, miscoverage, miscoverage_low, miscoverage_high,
                    miscoverage_p, miscoverage_alarm, audit_alarm, audit_samples, power, power_low, power_high,
                    power_n, precision, precision_low, precision_high, precision_n)  # fmt: skip

    def describe(self) -> list[Metric]:
        return []


def calibration_collector() -> CalibrationCollector:
    return CalibrationCollector()
