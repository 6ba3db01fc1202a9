"""Shared helpers of the export_labels / import_labels tests: a varied set of labels and the commands."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.utils import timezone

from calibration import services
from calibration.label_files import COMPARED
from calibration.models import CalibrationLabel

SIGNALS = {"D_hat": 1.25, "coh_star": 0.81, "r": 0.47}


def store_varied_labels() -> None:
    """Audit, escalation and imported labels of two tenants, with and without every optional field."""
    at = timezone.now() - timedelta(days=1)
    services.record_label(
        tenant="acme", pcs_id="a" * 64, label="benign", provenance="audit", signals=SIGNALS,
        inclusion_probability=0.02, decision="escalate", p_value=0.031, flagged=True, snapshot_n=250, delta=0.05,
        received_at=at, labelled_at=at + timedelta(minutes=5), origin="review:alice",
    )  # fmt: skip
    services.record_label(tenant="acme", pcs_id="b" * 64, label="anomalous", provenance="escalation",
                          signals={"D_hat": 2.5, "coh_star": 0.2, "r": 0.9}, decision="reject", labelled_at=at)  # fmt: skip
    services.record_label(tenant="beta", pcs_id="c" * 64, label="benign", provenance="imported", score=0.3125,
                          labelled_at=at)  # fmt: skip
    services.record_label(tenant="beta", pcs_id="d" * 64, label="benign", provenance="audit", signals=SIGNALS,
                          inclusion_probability=1.0, decision="accept", flagged=False, labelled_at=at)  # fmt: skip


def stored_labels() -> list[dict[str, Any]]:
    """Every stored label as its fields, origin aside (an import records itself there)."""
    return list(CalibrationLabel.objects.order_by("tenant", "pcs_id").values(*COMPARED))


def export(path: Path, *args: str) -> str:
    err = io.StringIO()
    call_command("export_labels", "-o", str(path), *args, stderr=err)
    return err.getvalue()


def import_file(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("import_labels", str(path), *args, stdout=out)
    return out.getvalue()
