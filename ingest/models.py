"""Stored PCS outcomes (the dedup key) and the async batches that wait for a worker.

Tenants and their keys live in ``tenancy``, the verification parameters in ``policy``.
"""

from __future__ import annotations

import uuid

from django.db import models

from tenancy.models import Tenant


class Decision(models.TextChoices):
    ACCEPT = "accept"
    ESCALATE = "escalate"
    REJECT = "reject"


class PcsRecord(models.Model):
    """The stored outcome of one PCS; the unique (tenant, pcs_id) is the dedup key. Never updated.

    The unique constraint's index is the only one that starts with the tenant. The submit path's dedup
    lookup is a prepared statement whose plan PostgreSQL may fix while the table is still empty and has no
    statistics; with a second index on the tenant (Django's own for the foreign key, or tenant + shard) the
    planner could pick that one on a tie and keep filtering every row of the tenant on each replay.
    """

    # db_index=False: the unique (tenant, pcs_id) index serves the foreign key's lookups.
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="records", db_index=False)
    pcs_id = models.CharField(max_length=64)
    shard_id = models.CharField(max_length=128)
    epoch = models.BigIntegerField()
    attempt = models.BigIntegerField(default=1)
    signed_digest = models.CharField(
        max_length=64,
        help_text="SHA-256 that a replay must match: of the signed subset (PCS 0.1), of the content, every "
        "field but sig, attempt and sent_at (PCS 0.2).",
    )
    key_id = models.CharField(max_length=64, blank=True)
    body = models.JSONField(help_text="The PCS as received.")
    d_hat = models.FloatField()
    coh_star = models.FloatField()
    r = models.FloatField()
    budget = models.FloatField()
    regime = models.CharField(max_length=16)
    recomputed_d_hat = models.FloatField()
    score = models.FloatField(null=True, blank=True, help_text="Nonconformity score of the signals.")
    audit_sample = models.BooleanField(
        default=False, help_text="Drawn at random, whatever its verdict, to be labelled blind for calibration."
    )
    audit_probability = models.FloatField(
        default=0.0, help_text="The probability with which this PCS was drawn for the audit sample."
    )
    status_code = models.PositiveSmallIntegerField()
    decision = models.CharField(max_length=16, choices=Decision.choices)
    response = models.JSONField(help_text="The answer given on first delivery (dedup false).")
    params_version = models.PositiveIntegerField()
    received_at = models.DateTimeField()
    verified_at = models.DateTimeField()

    class Meta:
        verbose_name = "PCS record"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "pcs_id"], name="pcs_unique_per_tenant"),
        ]
        indexes = [
            models.Index(fields=["received_at"], name="pcs_received_at"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}:{self.pcs_id[:12]}"


class BatchJobQuerySet(models.QuerySet):
    def pending_before(self, cutoff) -> BatchJobQuerySet:
        """Batches not judged yet that were received before ``cutoff``, oldest first (index batch_job_done_at)."""
        return self.filter(done_at__isnull=True, received_at__lt=cutoff).order_by("received_at")

    def finished_before(self, cutoff) -> BatchJobQuerySet:
        """Batches whose answers were ready before ``cutoff`` (index batch_job_done_at)."""
        return self.filter(done_at__lt=cutoff)


class BatchJob(models.Model):
    """A batch answered 202 (``Prefer: respond-async``): its body waits here for a worker, which judges each
    item as the request would have (``ingest.batch.complete_job``) and keeps the answers for the status URL.

    The id is random (122 bits): the status URL is the capability to read the answers, with the tenant's name.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    body = models.BinaryField()
    kind = models.CharField(max_length=8)  # the WAL's batch kind: json or ndjson
    items = models.PositiveIntegerField()
    received_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)
    results = models.JSONField(null=True, blank=True)

    objects = BatchJobQuerySet.as_manager()

    class Meta:
        indexes = [
            # Serves the periodic sweep of pending batches (done_at IS NULL: a B-tree keeps the nulls) and the
            # retention purge of finished ones by age, so that neither scans the answers kept for the TTL.
            models.Index(fields=["done_at"], name="batch_job_done_at"),
        ]

    def __str__(self) -> str:
        return f"batch {self.id} ({self.items} PCS)"
