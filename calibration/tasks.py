"""Celery tasks of calibration: thin wrappers over the services, idempotent and acks_late."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

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
    """Per tenant, one look at the drift martingale over its benign audit scores (level FLK_DRIFT_LEVEL)."""
    level = float(getattr(settings, "FLK_DRIFT_LEVEL", 0.01))
    formula = services.params_provider()().formula
    for name in services.calibrated_tenants():
        services.check_drift_tenant(name, level=level, formula=formula)


@shared_task(acks_late=True, ignore_result=True)
def check_miscoverage() -> None:
    """Per tenant, the false-escalation rate of benign audit labels (BH across tenants), the audit's own alarm,
    and power and precision from the audit sample."""
    reports = services.check_miscoverage()
    for report in reports:
        services.record_performance(report.tenant)
