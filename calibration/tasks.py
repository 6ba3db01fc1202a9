"""Celery tasks of calibration: thin wrappers over the services, idempotent and acks_late."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from calibration import services
from calibration.models import GLOBAL_SET


@shared_task(acks_late=True, ignore_result=True)
def recalibrate(tenant: str | None = None) -> None:
    """Rebuild the snapshot of one tenant (after labels) or of every tenant (beat), and the global set."""
    if tenant is not None:
        # Cleared before the labels are read: a label arriving during this rebuild schedules another one.
        services.clear_pending(tenant)
    params = services.params_provider()()
    tenants = [tenant] if tenant is not None else services.calibrated_tenants()
    for name in [*tenants, GLOBAL_SET]:
        services.recalibrate_tenant(
            name, delta=params.delta, n_min=params.n_min, params_version=params.params_version, formula=params.formula
        )


@shared_task(acks_late=True, ignore_result=True)
def check_drift() -> None:
    """Per tenant, KS test of the last FLK_DRIFT_WINDOW_HOURS of traffic scores against the calibration set."""
    since = timezone.now() - timedelta(hours=float(getattr(settings, "FLK_DRIFT_WINDOW_HOURS", 24)))
    level = float(getattr(settings, "FLK_DRIFT_LEVEL", 0.01))
    for name in services.calibrated_tenants():
        services.check_drift_tenant(name, level=level, since=since)


@shared_task(acks_late=True, ignore_result=True)
def check_miscoverage() -> None:
    """Per tenant, the share of benign PCS that were escalated, tested against delta."""
    params = services.params_provider()()
    for name in services.calibrated_tenants():
        services.check_miscoverage_tenant(name, delta=params.delta, audit_rate=params.audit_rate)
