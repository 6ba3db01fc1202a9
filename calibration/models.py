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
    AUDIT = "audit", "audit sample (drawn at random, whatever the verdict)"
    ESCALATION = "escalation", "review of an escalated or rejected PCS outside the audit sample"
    IMPORTED = "imported", "imported, not known to be drawn at random"


class Source(models.TextChoices):
    OWN = "own", "the tenant's own labels"
    GLOBAL = "global", "the global fallback set"


class CalibrationLabel(models.Model):
    """A reviewer's label of one PCS with the signals its score is computed from; one per (tenant, pcs_id).

    Only benign labels of audit samples enter a quantile: the audit sample is drawn with a known probability
    whatever the verdict, so its benign scores are an exchangeable sample of benign traffic. The rest is kept
    for power, precision and the monitors. ``signals`` lets recalibration recompute the score under the active
    parameters; ``score`` is the score under the formula named by ``formula_key``.
    """

    tenant = models.CharField(max_length=64, db_index=True)
    pcs_id = models.CharField(max_length=64)
    score = models.FloatField(null=True, blank=True, help_text="Empty when the PCS was stored without a score.")
    formula_key = models.CharField(max_length=16, blank=True, help_text="The score formula of ``score``.")
    signals = models.JSONField(
        null=True, blank=True, help_text="D_hat, coh_star and r of the PCS: the score is recomputed from them."
    )
    label = models.CharField(max_length=16, choices=Label.choices)
    provenance = models.CharField(max_length=16, choices=Provenance.choices)
    inclusion_probability = models.FloatField(
        null=True, blank=True, help_text="For audit samples: the probability with which this PCS was drawn."
    )
    decision = models.CharField(max_length=16, blank=True, help_text="The verdict the PCS got at ingest.")
    p_value = models.FloatField(null=True, blank=True, help_text="Its conformal p-value at ingest, if any.")
    flagged = models.BooleanField(
        null=True, blank=True, help_text="Whether the conformal step flagged it at ingest (p <= delta); empty when off."
    )
    snapshot_n = models.PositiveIntegerField(null=True, blank=True, help_text="Calibration size that decided it.")
    delta = models.FloatField(null=True, blank=True, help_text="The level in force when it was decided.")
    received_at = models.DateTimeField(null=True, blank=True, help_text="When the PCS was received.")
    origin = models.CharField(max_length=200, blank=True, help_text="Who or what recorded it (reviewer, import).")
    labelled_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "pcs_id"], name="calibration_label_unique")]
        indexes = [models.Index(fields=["tenant", "label", "labelled_at"], name="calibration_label_set")]

    def __str__(self) -> str:
        return f"{self.tenant}:{self.pcs_id[:12]} {self.label} ({self.provenance})"


class ExpiredAudit(models.Model):
    """An audit sample given up without a label (an explicit decision): its stored outcome may be purged.

    Until it is labelled or expired, an audit sample's outcome outlives the dedup TTL, so that labels are not
    lost to the purge; expiries are counted against label completion.
    """

    tenant = models.CharField(max_length=64)
    pcs_id = models.CharField(max_length=64)
    reason = models.CharField(max_length=200, blank=True)
    expired_by = models.CharField(max_length=150, blank=True)
    expired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "pcs_id"], name="calibration_expired_audit_unique")]

    def __str__(self) -> str:
        return f"{self.tenant}:{self.pcs_id[:12]} expired"


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
    formula = models.JSONField(null=True, blank=True, help_text="The score formula every score was computed with.")
    formula_key = models.CharField(max_length=16, blank=True)
    skipped = models.PositiveIntegerField(
        default=0, help_text="Benign audit labels left out: no signals to recompute their score under this formula."
    )
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
