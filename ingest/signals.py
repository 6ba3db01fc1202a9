"""Signals of the ingest app: change announcements for cached config, and stored outcomes for followers."""

from __future__ import annotations

import django.dispatch
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from ingest.config_cache import announce_change
from ingest.models import ApiKey, SigningKey, Tenant, VerifyParams

# Sent after a new PCS outcome is committed (never for a replay). Receivers (review queue, calibration
# bookkeeping) must not raise into the request: it is sent with send_robust and failures are logged.
# kwargs: record_id, tenant_id, tenant, pcs_id, shard_id, received_at, decision, verdict, params,
# audit_sample, score
outcome_stored = django.dispatch.Signal()


def _announce_after_commit(**_kwargs: object) -> None:
    transaction.on_commit(announce_change)


for _model in (Tenant, SigningKey, ApiKey, VerifyParams):
    post_save.connect(_announce_after_commit, sender=_model, dispatch_uid=f"announce-save-{_model.__name__}")
    post_delete.connect(_announce_after_commit, sender=_model, dispatch_uid=f"announce-delete-{_model.__name__}")
