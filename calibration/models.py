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
    """One look at a tenant's drift martingale: the Simple Jumper over its stream of benign audit scores.

    The stream is the tenant's benign audit labels in label order, every score under the formula named by
    ``formula_key``, from ``stream_start`` on (after the previous alarm, once it was held). One row per hourly
    look, so the martingale over time can be plotted; ``p_value`` = 1/max is valid at any stopping time.
    """

    tenant = models.CharField(max_length=64)
    formula_key = models.CharField(max_length=16, blank=True, help_text="The score formula of the stream.")
    stream_start = models.DateTimeField(
        null=True, blank=True, help_text="Labels after this time form the stream; empty: from the first label."
    )
    n_labels = models.PositiveIntegerField(default=0, help_text="Benign audit labels in the stream so far.")
    martingale = models.FloatField(default=1.0, help_text="The martingale after the latest label (starts at 1).")
    martingale_max = models.FloatField(default=1.0, help_text="Its largest value over the stream.")
    p_value = models.FloatField(default=1.0, help_text="1 / martingale_max: an anytime-valid p-value (Ville).")
    level = models.FloatField(help_text="The alarm fires when the martingale reaches 1/level.")
    drift_detected = models.BooleanField(default=False)
    alarm_at = models.DateTimeField(null=True, blank=True, help_text="Label time at which it reached 1/level.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"], name="calibration_drift_latest")]

    def __str__(self) -> str:
        return f"{self.tenant} martingale={self.martingale:.3g} (alarm at {1 / self.level:g})"


class AuditAlarm(models.TextChoices):
    NONE = "", "none"
    OFF = "off", "audit share is 0: no audit sample is drawn"
    SILENT = "silent", "no audit label for a long time while traffic flows"
    STALE = "stale", "audit samples waiting for a label longer than allowed"


class MiscoverageReport(models.Model):
    """One check of a tenant's false-escalation rate on benign audit labels, and of its audit labelling.

    ``flagged`` / ``considered``: benign audit labels whose conformal p-value was <= delta at ingest, over those
    the conformal step judged. ``p_value`` is the beta-binomial test against one calibration set of size
    ``snapshot_n``; ``alarm`` is Benjamini–Hochberg's decision across the tenants of the run. ``audit_alarm``
    is the separate alarm of a missing, stopped or stale audit.
    """

    tenant = models.CharField(max_length=64)
    window_start = models.DateTimeField(help_text="Labels from this time on were counted.")
    flagged = models.PositiveIntegerField(default=0, help_text="Benign audit labels flagged by the conformal step.")
    considered = models.PositiveIntegerField(default=0, help_text="Benign audit labels the conformal step judged.")
    rate = models.FloatField(null=True, blank=True, help_text="flagged / considered; empty without labels.")
    ci_low = models.FloatField(default=0.0, help_text="Clopper–Pearson 95 % interval of the rate.")
    ci_high = models.FloatField(default=1.0)
    delta = models.FloatField(null=True, blank=True, help_text="The largest delta in force in the window.")
    snapshot_n = models.PositiveIntegerField(null=True, blank=True, help_text="The smallest calibration size.")
    binomial_p = models.FloatField(default=1.0, help_text="Exact binomial test of rate <= delta.")
    p_value = models.FloatField(default=1.0, help_text="Beta-binomial test (one calibration set of snapshot_n).")
    adjusted_p = models.FloatField(default=1.0, help_text="Benjamini–Hochberg adjusted p-value across tenants.")
    level = models.FloatField(help_text="FLK_MISCOVERAGE_LEVEL: the false-discovery rate across tenants.")
    alarm = models.BooleanField(default=False, help_text="Benign PCS are escalated more often than delta allows.")
    audit_alarm = models.CharField(max_length=8, choices=AuditAlarm.choices, blank=True, default="")
    audit_detail = models.CharField(max_length=300, blank=True)
    labelled = models.PositiveIntegerField(default=0, help_text="Audit samples labelled.")
    expired = models.PositiveIntegerField(default=0, help_text="Audit samples expired without a label.")
    waiting = models.PositiveIntegerField(default=0, help_text="Audit samples waiting for a label.")
    oldest_waiting_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"], name="calibration_miscov_latest")]

    def __str__(self) -> str:
        rate = "n/a" if self.rate is None else f"{self.rate:.3g}"
        return f"{self.tenant} rate={rate} (delta {self.delta})"


class PerformanceReport(models.Model):
    """Power and precision of a tenant's verdicts from its audit labels, weighted by 1/inclusion probability.

    Power: the share of anomalous PCS not accepted. Precision: the share of PCS not accepted that are
    anomalous. Intervals are Clopper–Pearson on Kish's effective sample size. Measured, never guaranteed.
    """

    tenant = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    power = models.FloatField(null=True, blank=True, help_text="Empty without anomalous audit labels.")
    power_ci_low = models.FloatField(default=0.0)
    power_ci_high = models.FloatField(default=1.0)
    power_labels = models.PositiveIntegerField(default=0)
    power_effective_n = models.FloatField(default=0.0)
    precision = models.FloatField(null=True, blank=True, help_text="Empty without audit labels of stopped PCS.")
    precision_ci_low = models.FloatField(default=0.0)
    precision_ci_high = models.FloatField(default=1.0)
    precision_labels = models.PositiveIntegerField(default=0)
    precision_effective_n = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"], name="calibration_perf_latest")]

    def __str__(self) -> str:
        return f"{self.tenant} power={self.power} precision={self.precision}"
