"""What calibration reads of stored outcomes, through the providers named in settings.

Calibration does not import ``ingest``: ``FLK_CALIBRATION_TRAFFIC_PROVIDER`` and ``FLK_CALIBRATION_AUDIT_PROVIDER``
name these functions, so the dependency stays one-way (ingest → calibration).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Exists, Min, OuterRef, Q

from calibration.models import CalibrationLabel, ExpiredAudit
from ingest.models import PcsRecord


def recent_traffic_scores(tenant: str, since: datetime, limit: int) -> list[float]:
    """The newest scores of a tenant's stored PCS since ``since`` (FLK_CALIBRATION_TRAFFIC_PROVIDER)."""
    rows = (
        PcsRecord.objects.filter(tenant__name=tenant, received_at__gte=since, score__isnull=False)
        .order_by("-received_at")
        .values_list("score", flat=True)[:limit]
    )
    return list(rows)


def awaiting_audit_label() -> Q:
    """Stored outcomes that are audit samples neither labelled nor expired (``calibration.models.ExpiredAudit``)."""
    same_pcs = {"tenant": OuterRef("tenant__name"), "pcs_id": OuterRef("pcs_id")}
    return (
        Q(audit_sample=True)
        & ~Exists(CalibrationLabel.objects.filter(**same_pcs))
        & ~Exists(ExpiredAudit.objects.filter(**same_pcs))
    )


def waiting_audit_samples(tenant: str | None = None) -> dict[str, tuple[int, datetime | None]]:
    """Per tenant, how many audit samples wait for a label and when the oldest was received.

    FLK_CALIBRATION_AUDIT_PROVIDER points here: calibration counts labels and expiries itself, and stored
    outcomes through this function.
    """
    waiting = PcsRecord.objects.filter(awaiting_audit_label())
    if tenant is not None:
        waiting = waiting.filter(tenant__name=tenant)
    rows = waiting.values_list("tenant__name").annotate(n=Count("id"), oldest=Min("received_at"))
    return {name: (n, oldest) for name, n, oldest in rows.values_list("tenant__name", "n", "oldest")}
