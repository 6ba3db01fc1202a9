"""The calibration pages for staff: per tenant, whether the guarantee holds in operation and what the verdicts catch.

Thin views: the figures come from ``calibration.services`` (labels, snapshots, monitor reports); the charts are
server-side SVG (``review.charts``). Reviewers restricted to some tenants see only those.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from calibration import services as calibration
from calibration.models import (
    CalibrationLabel,
    CalibrationSnapshot,
    DriftReport,
    Label,
    MiscoverageReport,
    Provenance,
)
from review import services
from review.charts import histogram_svg, time_series_svg

HISTORY = 500  # snapshots and reports drawn per chart
P_VALUE_BINS = 20


def _staff_may_see(request: HttpRequest, tenant: str | None = None) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("the calibration pages are for staff")
    allowed = services.allowed_tenants(request.user)
    if tenant is not None and allowed is not None and tenant not in allowed:
        raise Http404("no such tenant")


def _login_first(view):
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@require_GET
@_login_first
def calibration_index(request: HttpRequest) -> HttpResponse:
    """Every calibrated tenant with its current calibration size, threshold and audit label completion."""
    _staff_may_see(request)
    allowed = services.allowed_tenants(request.user)
    tenants = [t for t in calibration.calibrated_tenants() if allowed is None or t in allowed]
    completion = calibration.audit_completion()
    rows = []
    for name in tenants:
        snapshot = calibration.current_snapshot(name)
        rows.append({
            "tenant": name,
            "n": snapshot.n if snapshot else None,
            "source": snapshot.source if snapshot else None,
            "threshold": snapshot.threshold if snapshot and snapshot.threshold != float("inf") else None,
            "completion": completion.get(name),
        })  # fmt: skip
    return render(request, "review/calibration_index.html", {"rows": rows})


@require_GET
@_login_first
def calibration_tenant(request: HttpRequest, tenant: str) -> HttpResponse:
    """One tenant: n and threshold over time, audit p-values against uniform, the monitors, power and precision."""
    _staff_may_see(request, tenant)
    if tenant not in calibration.calibrated_tenants():
        raise Http404("no labels and no snapshot for this tenant")
    params = calibration.params_provider()()
    snapshots = list(
        CalibrationSnapshot.objects.filter(tenant=tenant)
        .order_by("-id")
        .values("created_at", "n", "threshold")[:HISTORY]
    )[::-1]
    p_values = list(
        CalibrationLabel.objects.filter(
            tenant=tenant, provenance=Provenance.AUDIT, label=Label.BENIGN, p_value__isnull=False
        )
        .order_by("-labelled_at")
        .values_list("p_value", flat=True)[:5000]
    )
    current = calibration.current_snapshot(tenant)
    context = {
        "tenant": tenant,
        "params": params,
        "current": current,
        "current_threshold": current.threshold if current and current.threshold != float("inf") else None,
        "reject_min_n": math.ceil(round(1 / params.reject_delta - 1, 6)),
        "n_chart": time_series_svg(
            [(s["created_at"], s["n"]) for s in snapshots], y_label="calibration n",
            label=f"calibration size of {tenant} over time", reference=params.n_min,
            reference_label=f"n_min = {params.n_min}", y_min=0,
        ),
        "threshold_chart": time_series_svg(
            [(s["created_at"], s["threshold"]) for s in snapshots if s["threshold"] is not None],
            y_label="threshold (score)", label=f"conformal threshold of {tenant} over time",
        ),
        "p_value_chart": histogram_svg(
            p_values, bins=P_VALUE_BINS, lo=0.0, hi=1.0, x_label="conformal p-value at ingest",
            label=f"p-values of {tenant}'s benign audit samples against uniform",
            expected=len(p_values) / P_VALUE_BINS if p_values else None,
        ),
        "p_value_count": len(p_values),
        "completion": calibration.audit_completion(tenant).get(tenant),
        "snapshots": snapshots[::-1][:20],
    }  # fmt: skip
    context.update(_monitors(tenant, params))
    return render(request, "review/calibration.html", context)


def _monitors(tenant: str, params) -> dict:
    """The monitors' view of ``tenant``: the false-escalation estimate now and over time, drift, power, alarms."""
    window = timezone.now() - timedelta(days=float(getattr(settings, "FLK_MISCOVERAGE_WINDOW_DAYS", 7.0)))
    reports = list(MiscoverageReport.objects.filter(tenant=tenant).order_by("-id")[:HISTORY])[::-1]
    drifts = list(DriftReport.objects.filter(tenant=tenant).order_by("-id")[:HISTORY])[::-1]
    latest = reports[-1] if reports else None
    drift = drifts[-1] if drifts else None
    alarms = []
    if latest is not None and latest.audit_alarm:
        alarms.append(f"audit {latest.get_audit_alarm_display()}: {latest.audit_detail}")
    return {
        "miscoverage": calibration.miscoverage_estimate(tenant, since=window, default_delta=params.delta),
        "miscoverage_alarm": bool(latest and latest.alarm),
        "miscoverage_chart": time_series_svg(
            [(r.created_at, r.rate) for r in reports if r.rate is not None], y_label="false-escalation rate",
            label=f"estimated false-escalation rate of {tenant} over time", reference=params.delta,
            reference_label=f"delta = {params.delta:g}", y_min=0,
        ),
        "drift": drift and {
            "value": drift.martingale, "threshold": 1 / drift.level, "alarm": drift.drift_detected,
            "labels": drift.n_labels,
        },
        "drift_chart": time_series_svg(
            [(r.created_at, r.martingale) for r in drifts], y_label="test martingale",
            label=f"drift martingale of {tenant} over time", reference=1 / drifts[-1].level if drifts else None,
            reference_label=f"alarm at 1/level = {1 / drifts[-1].level:g}" if drifts else "", y_min=0,
        ),
        "performance": calibration.performance_figures(tenant),
        "alarms": alarms,
    }  # fmt: skip
