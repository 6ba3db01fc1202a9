"""Calibration sets (labelled scores per tenant), their snapshots, and the monitors' reports.

Tenants are named, not referenced: calibration receives values from ingest and review and never imports them.
"""

from __future__ import annotations

from django.db import models

GLOBAL_SET = "*"  # the snapshot of every tenant's labels, the fallback for tenants under n_min


class Label(models.TextChoices):
    BENIGN = "benign"
    ANOMALOUS = "anomalous"


class Provenance(models.TextChoices):
    AUDIT = "audit", "audit sample (random accepted PCS)"
    ESCALATION = "escalation", "review of an escalated PCS"


class Source(models.TextChoices):
    OWN = "own", "the tenant's own labels"
    GLOBAL = "global", "the global fallback set"


class CalibrationLabel(models.Model):
    """A reviewer's label of one PCS with its nonconformity score; one per (tenant, pcs_id), relabels replace."""

    tenant = models.CharField(max_length=64, db_index=True)
    pcs_id = models.CharField(max_length=64)
    score = models.FloatField(null=True, blank=True, help_text="Empty when the PCS was stored without a score.")
    label = models.CharField(max_length=16, choices=Label.choices)
    provenance = models.CharField(max_length=16, choices=Provenance.choices)
    labelled_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "pcs_id"], name="calibration_label_unique")]
        indexes = [models.Index(fields=["tenant", "label", "labelled_at"], name="calibration_label_set")]

    def __str__(self) -> str:
        return f"{self.tenant}:{self.pcs_id[:12]} {self.label} ({self.provenance})"


class TenantCalibration(models.Model):
    """Per-tenant calibration options, edited in admin."""

    tenant = models.CharField(max_length=64, unique=True)
    include_escalation_labels = models.BooleanField(
        default=False,
        help_text=(
            "Also put benign labels of escalated PCS in the quantile. They are the highest benign scores, so "
            "the threshold moves up: fewer false escalations in practice, but the set is no longer an "
            "exchangeable sample and the guarantee becomes approximate (a conservative bias for acceptance)."
        ),
    )

    class Meta:
        ordering = ["tenant"]
        verbose_name = "tenant calibration option"

    def __str__(self) -> str:
        return self.tenant


class CalibrationSnapshot(models.Model):
    """The outcome of one recalibration of a tenant (or of the global set): the sorted scores and threshold."""

    tenant = models.CharField(max_length=64, help_text="'*' is the global fallback set.")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.OWN)
    n = models.PositiveIntegerField()
    n_min = models.PositiveIntegerField()
    delta = models.FloatField()
    threshold = models.FloatField(null=True, blank=True, help_text="Empty when infinite (too few scores).")
    scores = models.JSONField(help_text="The calibration scores, sorted ascending.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the labels used (tenant, pcs_id, score).")
    params_version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"], name="calibration_snapshot_latest")]

    def __str__(self) -> str:
        return f"{self.tenant} n={self.n} #{self.pk}"


class DriftReport(models.Model):
    """One KS test of a tenant's recent traffic scores against its calibration scores."""

    tenant = models.CharField(max_length=64)
    snapshot = models.ForeignKey(CalibrationSnapshot, null=True, on_delete=models.SET_NULL, related_name="+")
    n_recent = models.PositiveIntegerField()
    n_calibration = models.PositiveIntegerField()
    statistic = models.FloatField()
    p_value = models.FloatField()
    level = models.FloatField()
    drift_detected = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"], name="calibration_drift_latest")]

    def __str__(self) -> str:
        return f"{self.tenant} KS p={self.p_value:.3g}"


class MiscoverageReport(models.Model):
    """The empirical false-escalation rate of benign PCS against delta, with a one-sided binomial test."""

    tenant = models.CharField(max_length=64)
    escalated = models.PositiveIntegerField(help_text="Benign labels of escalated PCS.")
    benign_audit = models.PositiveIntegerField(help_text="Benign labels of audit samples (accepted PCS).")
    total = models.PositiveIntegerField(help_text="Estimated benign PCS behind the counts.")
    rate = models.FloatField()
    delta = models.FloatField()
    p_value = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"], name="calibration_miscov_latest")]

    def __str__(self) -> str:
        return f"{self.tenant} rate={self.rate:.3g} (delta {self.delta:g})"
