"""The figures an admin checks first, for the admin index: each one computed on its own and never fatal.

Review and calibration keep their own tables (built by their apps); they are looked up lazily through the
app registry, so the index still renders, with "—", before those tables exist or when a query fails.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.apps import apps
from django.db import DatabaseError, transaction
from django.utils import timezone

log = logging.getLogger("flk.console")
OPEN_REVIEW_STATES = ("open", "pending", "claimed", "queued")


def _guarded(compute):
    try:
        with transaction.atomic():  # a failed query must not poison the request's transaction
            return compute()
    except (LookupError, DatabaseError, AttributeError, ValueError):
        log.info("console_figure_unavailable", extra={"event": "console_figure_unavailable"}, exc_info=True)
        return None


def _field_names(model) -> set[str]:
    return {f.name for f in model._meta.get_fields()}


def _queue_depth() -> int:
    model = apps.get_model("review", "ReviewItem")
    fields = _field_names(model)
    queryset = model.objects.all()
    if "stage" in fields:  # review.ReviewItem: first -> second -> done
        queryset = queryset.exclude(stage="done")
    elif "status" in fields:
        queryset = queryset.filter(status__in=OPEN_REVIEW_STATES)
    elif "label" in fields:
        queryset = queryset.filter(label__isnull=True)
    return queryset.count()


def _escalation_rate_today() -> dict:
    from ingest.models import PcsRecord

    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    today = PcsRecord.objects.filter(received_at__gte=start)
    total = today.count()
    escalated = today.exclude(decision="accept").count()
    return {"total": total, "escalated": escalated, "rate": (escalated / total) if total else None}


def _drift_alerts() -> int:
    model = apps.get_model("calibration", "DriftReport")
    fields = _field_names(model)
    queryset = model.objects.all()
    for flag in ("drift_detected", "alert", "drifted"):
        if flag in fields:
            queryset = queryset.filter(**{flag: True})
            break
    for stamp in ("created_at", "computed_at", "checked_at"):
        if stamp in fields:
            queryset = queryset.filter(**{f"{stamp}__gte": timezone.now() - timedelta(days=1)})
            break
    return queryset.count()


def _active_version():
    from policy.models import VerifyParams

    return VerifyParams.objects.filter(is_active=True).values("pk", "version", "activated_at").first()


def headline_figures() -> dict:
    """Queue depth, today's escalation rate, drift alerts of the last day, the active VerifyParams version."""
    return {
        "queue_depth": _guarded(_queue_depth),
        "escalations_today": _guarded(_escalation_rate_today),
        "drift_alerts": _guarded(_drift_alerts),
        "active_params": _guarded(_active_version),
    }
