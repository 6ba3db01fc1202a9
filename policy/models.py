"""The versioned verification parameters (VerifyParams) and the what-if reports that judge a draft.

Rows of VerifyParams are never edited in place and exactly one is active; ``policy.versions`` creates and
activates them, ``policy.params_rules`` holds their invariants. The tables keep their first names
(``ingest_verifyparams``, ``ingest_whatifreport``): the models moved here from ``ingest`` without moving
data (migration ``ingest.0013_tenancy_and_policy_apps``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from agent_client.regime import BudgetWeights, RegimeThresholds
from tenancy.models import AnnouncingQuerySet


def _unit() -> list:
    return [MinValueValidator(0.0), MaxValueValidator(1.0)]


class VerifyParams(models.Model):
    """One version of the verification parameters. Rows are never edited in place; one is active."""

    version = models.PositiveIntegerField(unique=True)
    is_active = models.BooleanField(default=False)
    # Tolerances of the claimed signals.
    tol_d = models.FloatField("tolD", default=0.15, validators=[MinValueValidator(0.0)])
    tol_coh = models.FloatField("tolCoh", default=0.05, validators=[MinValueValidator(0.0)])
    budget_tol = models.FloatField("budget tolerance", default=0.01, validators=[MinValueValidator(0.0)])
    # Budget formula.
    base = models.FloatField(default=BudgetWeights.base, validators=_unit())
    alpha = models.FloatField(default=BudgetWeights.alpha, validators=_unit())
    beta = models.FloatField(default=BudgetWeights.beta, validators=_unit())
    gamma = models.FloatField(default=BudgetWeights.gamma, validators=_unit())
    d0 = models.FloatField("D0", default=BudgetWeights.d0)
    # Regime thresholds.
    sticky_coh_min = models.FloatField(default=RegimeThresholds.sticky_coh_min)
    sticky_d_max = models.FloatField(default=RegimeThresholds.sticky_d_max)
    non_sticky_d_min = models.FloatField(default=RegimeThresholds.non_sticky_d_min)
    # Conformal scoring and decision.
    w_d = models.FloatField("weight of D̂ in the score", default=0.35, validators=_unit())
    w_coh = models.FloatField("weight of coh★ in the score", default=0.40, validators=_unit())
    w_r = models.FloatField("weight of r in the score", default=0.25, validators=_unit())
    r0 = models.FloatField("reference r", default=0.65, validators=[MinValueValidator(1e-9)])
    score_kind = models.CharField(
        "score kind",
        max_length=16,
        default="reference",
        choices=[
            ("reference", "reference: the seed's formula, fixed references r0 and caps for every tenant"),
            ("centred", "centred: distances from each tenant's benign centre, in its spread, global weights"),
            ("fitted", "fitted: centred, with weights fitted per tenant on labels outside its calibration set"),
        ],
        help_text=(
            "How the conformal score is computed (calibration.scoring). centred and fitted are fitted per tenant at "
            "each recalibration on a fold of its benign audit labels (1 in 5, by sha256 of pcs_id) that never "
            "calibrates it, and on anomalous labels; the guarantee holds as before. r0 is used by reference only."
        ),
    )
    delta = models.FloatField(default=0.05)
    reject_delta = models.FloatField(default=0.005)
    n_min = models.PositiveIntegerField("minimum calibration size", default=100)
    audit_rate = models.FloatField(
        "audit sample share",
        default=0.02,
        validators=_unit(),
        help_text="Share of PCS drawn at random for a blind label, whatever their verdict (the calibration sample).",
    )
    bootstrap_audit_rate = models.FloatField(
        "audit sample share until n_min",
        default=0.2,
        validators=_unit(),
        help_text=(
            "The audit share of a tenant whose own calibration set is still under n_min, so that it reaches n_min "
            "after about n_min / share labelled PCS instead of n_min / audit share."
        ),
    )
    dedup_ttl_days = models.PositiveIntegerField("dedup TTL (days)", default=14)
    # Audit of the change.
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_at = models.DateTimeField(null=True, blank=True)

    objects = AnnouncingQuerySet.as_manager()

    class Meta:
        db_table = "ingest_verifyparams"
        ordering = ["-version"]
        verbose_name = "verify params version"
        constraints = [
            # Exactly one active version: at most one by this index, at least one by activation being a
            # single transaction that switches the flag from one row to another.
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_verify_params"),
        ]

    def __str__(self) -> str:
        return f"v{self.version}{' (active)' if self.is_active else ''}"

    def param_values(self) -> dict[str, float]:
        from policy.params_rules import PARAM_FIELDS

        return {name: getattr(self, name) for name in PARAM_FIELDS}

    def clean(self) -> None:
        # The invariants live in policy.params_rules so the admin, the policy DSL and tests share them.
        from django.core.exceptions import ValidationError

        from policy.params_rules import invariant_errors

        errors = invariant_errors(self.param_values())
        if errors:
            raise ValidationError(errors)


class WhatIfReport(models.Model):
    """What a draft VerifyParams version would change on recent stored PCS; stored outcomes are untouched."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    params = models.ForeignKey(VerifyParams, on_delete=models.CASCADE, related_name="whatif_reports")
    baseline_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The active version compared against."
    )
    sample_size = models.PositiveIntegerField("last N stored PCS", default=10_000)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    examined = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    transitions = models.JSONField(default=dict, blank=True, help_text="{'accept→escalate': count, ...}")
    examples = models.JSONField(default=list, blank=True, help_text="A few changed PCS per transition.")
    calibration = models.JSONField(
        default=list,
        blank=True,
        help_text="Per tenant: calibration size and threshold under each version, and the share of recent audited "
        "PCS each version would not accept.",
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ingest_whatifreport"
        ordering = ["-created_at"]
        verbose_name = "what-if report"

    def __str__(self) -> str:
        return f"what-if of v{self.params.version} on {self.sample_size} PCS ({self.status})"
