"""What-if before activation: re-verify recent stored PCS under a draft VerifyParams version.

The same pure ``verify_pcs`` decides under the version in service and under the draft, each with the
calibration that version would have: every tenant's benign audit labels rescored under that version's formula,
its delta and n_min (``calibration.services.preview_snapshots``). So a change in the report is caused by the
parameters alone, the conformal step included. The stored outcomes are read, never written.

The calibration part of the report shows, per tenant, the calibration size and threshold under each version
and the share of the recent *audited* PCS (drawn at random whatever their verdict, so an unbiased sample of
traffic) that each version would not accept.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from calibration.services import preview_snapshots
from ingest.models import PcsRecord
from policy.models import VerifyParams, WhatIfReport
from policy.params import params_values
from policy.verification import VerifyParamsValues, verify_pcs

log = logging.getLogger("flk.whatif")
DEFAULT_SAMPLE_SIZE = 10_000
MAX_SAMPLE_SIZE = 1_000_000
EXAMPLES_PER_TRANSITION = 5


def request_whatif(params: VerifyParams, sample_size: int, user: object | None) -> WhatIfReport:
    """Create a pending report for ``params`` and enqueue its computation once the row is committed."""
    if not 1 <= sample_size <= MAX_SAMPLE_SIZE:
        raise ValueError(f"the number of PCS must be within [1, {MAX_SAMPLE_SIZE}]")
    report = WhatIfReport.objects.create(
        params=params, sample_size=sample_size, created_by=user if getattr(user, "pk", None) else None
    )
    # The worker must find the row: enqueue only after the commit.
    transaction.on_commit(lambda: _enqueue(report.pk))
    return report


QUEUE_UNREACHABLE = "the task queue (Redis) could not be reached; request the report again once it is back"


def _enqueue(report_id: int) -> None:
    """Hand the report to a worker; if the broker is unreachable, the report fails at once, saying why."""
    from policy.whatif_tasks import run_whatif_report

    try:
        run_whatif_report.delay(report_id)
    except KombuOperationalError:
        log.warning("whatif_enqueue_failed", extra={"event": "whatif_enqueue_failed", "report": report_id})
        WhatIfReport.objects.filter(pk=report_id, status=WhatIfReport.Status.PENDING).update(
            status=WhatIfReport.Status.FAILED, error=QUEUE_UNREACHABLE, finished_at=timezone.now()
        )


def compute_whatif(report_id: int) -> WhatIfReport:
    """Fill in report ``report_id``: how the last N stored PCS would be decided under its draft. Idempotent."""
    # A conditional UPDATE claims the report: a redelivered task finds it no longer pending and stops.
    claimed = WhatIfReport.objects.filter(pk=report_id, status=WhatIfReport.Status.PENDING).update(
        status=WhatIfReport.Status.RUNNING
    )
    report = WhatIfReport.objects.select_related("params").get(pk=report_id)
    if not claimed:
        return report
    try:
        active = VerifyParams.objects.filter(is_active=True).first()
        baseline = params_values(active if active is not None else report.params)
        draft = params_values(report.params)
        transitions: dict[str, int] = {}
        examples: list[dict] = []
        per_transition: dict[str, int] = {}
        examined = 0
        recent = list(
            PcsRecord.objects.order_by("-received_at", "-id").values_list(
                "pcs_id", "tenant__name", "body", "audit_sample"
            )[: report.sample_size]
        )
        tenants = sorted({tenant for _p, tenant, _b, _a in recent})
        calibration_before = _previews(tenants, baseline)
        calibration_after = _previews(tenants, draft)
        audited = {name: [0, 0, 0] for name in tenants}  # audited, not accepted before, not accepted after
        for pcs_id, tenant, body, audit_sample in recent:
            examined += 1
            before = verify_pcs(body, baseline, calibration_before[tenant])
            after = verify_pcs(body, draft, calibration_after[tenant])
            if audit_sample:
                counts = audited[tenant]
                counts[0] += 1
                counts[1] += not before.accepted
                counts[2] += not after.accepted
            if before.decision == after.decision:
                continue
            key = f"{before.decision}→{after.decision}"
            transitions[key] = transitions.get(key, 0) + 1
            if per_transition.get(key, 0) < EXAMPLES_PER_TRANSITION:
                per_transition[key] = per_transition.get(key, 0) + 1
                examples.append({
                    "pcs_id": pcs_id, "tenant": tenant, "transition": key,
                    "reasons_before": [c.code for c in before.failed_checks],
                    "reasons_after": [c.code for c in after.failed_checks],
                })  # fmt: skip
        report.calibration = [
            _calibration_row(name, calibration_before[name], calibration_after[name], *audited[name])
            for name in tenants
        ]
        report.baseline_version = baseline.version
        report.examined = examined
        report.changed = sum(transitions.values())
        report.transitions = transitions
        report.examples = examples
        report.status = WhatIfReport.Status.DONE
    except Exception as exc:
        log.exception("whatif_failed", extra={"event": "whatif_failed", "report_id": report_id})
        report.status = WhatIfReport.Status.FAILED
        report.error = f"{type(exc).__name__}: {exc}"
    report.finished_at = timezone.now()
    report.save()
    log.info("whatif_done", extra={"event": "whatif_done", "report_id": report_id, "examined": report.examined,
                                   "changed": report.changed, "status": report.status})  # fmt: skip
    return report


def _previews(tenants: list[str], params: VerifyParamsValues) -> dict:
    return preview_snapshots(tenants, formula=params.score_formula, delta=params.delta, n_min=params.n_min)


def _calibration_row(tenant: str, before, after, audited: int, refused_before: int, refused_after: int) -> dict:
    def threshold(snapshot) -> float | None:
        if snapshot is None or snapshot.threshold == float("inf"):
            return None  # JSON has no infinity; too few scores
        return snapshot.threshold

    return {
        "tenant": tenant,
        "source_before": before.source if before else None,
        "source_after": after.source if after else None,
        "n_before": before.n if before else 0,
        "n_after": after.n if after else 0,
        "threshold_before": threshold(before),
        "threshold_after": threshold(after),
        "audited": audited,
        "not_accepted_before": refused_before / audited if audited else None,
        "not_accepted_after": refused_after / audited if audited else None,
    }
