"""Signals of the ingest app: stored outcomes, for the review queue and calibration bookkeeping."""

from __future__ import annotations

import django.dispatch

# Sent after a new PCS outcome is committed (never for a replay). Receivers (review queue, calibration
# bookkeeping) must not raise into the request: it is sent with send_robust and failures are logged.
# kwargs: record_id, tenant_id, tenant, pcs_id, shard_id, received_at, decision, verdict, params,
# audit_sample, score
outcome_stored = django.dispatch.Signal()
