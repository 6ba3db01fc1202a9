"""Celery task of the what-if report: thin, takes the report id; the work is ingest.whatif.compute_whatif."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def run_whatif_report(report_id: int) -> None:
    """Compute one what-if report; safe to run twice (the report is claimed by a conditional UPDATE)."""
    from ingest.whatif import compute_whatif

    compute_whatif(report_id)
