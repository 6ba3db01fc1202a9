"""Celery task of the what-if report: thin, takes the report id; the work is policy.whatif.compute_whatif.

The task keeps the name it had before the policy app existed, so that messages already queued by an older
release are still consumed after an upgrade.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(name="ingest.whatif_tasks.run_whatif_report", acks_late=True, ignore_result=True)
def run_whatif_report(report_id: int) -> None:
    """Compute one what-if report; safe to run twice (the report is claimed by a conditional UPDATE)."""
    from policy.whatif import compute_whatif

    compute_whatif(report_id)
