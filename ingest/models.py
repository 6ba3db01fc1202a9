"""Tenants and their keys, the versioned verification parameters, and stored PCS outcomes."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models, transaction
from django.db.models import Q

from agent_client.canonical import V0_1, V0_2
from agent_client.regime import BudgetWeights, RegimeThresholds

TENANT_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
DEFAULT_TENANT = "default"


class AnnouncingQuerySet(models.QuerySet):
    """Bulk updates and deletes skip post_save/post_delete; announce them too so cached copies are dropped."""

    def update(self, **kwargs):
        from ingest.config_cache import announce_change

        count = super().update(**kwargs)
        transaction.on_commit(announce_change)
        return count

    def delete(self):
        from ingest.config_cache import announce_change

        result = super().delete()
        transaction.on_commit(announce_change)
        return result


class SignAlg(models.TextChoices):
    NONE = "none", "unsigned"
    HMAC = "hmac", "HMAC-SHA256"
    ED25519 = "ed25519", "Ed25519"


class PcsVersion(models.TextChoices):
    """The PCS protocol versions a tenant may require, oldest first (``canonical.PROTOCOLS``)."""

    V0_1 = V0_1, "0.1: signs eight fields (ft.degraded, N_j, scales, regime are unauthenticated)"
    V0_2 = V0_2, "0.2: signs every field"


class Tenant(models.Model):
    """A customer whose agents submit PCS; named by the ``X-Tenant-Id`` header."""

    name = models.CharField(max_length=64, unique=True, validators=[RegexValidator(TENANT_NAME_PATTERN)])
    enabled = models.BooleanField(default=True, help_text="A disabled tenant's requests get 401.")
    sign_alg = models.CharField(
        "signature algorithm",
        max_length=8,
        choices=SignAlg.choices,
        default=SignAlg.HMAC,
        help_text="For the 'default' tenant the PCS_SIGN_ALG environment variable decides.",
    )
    # New tenants start at 0.2; tenants that existed before 0.2 were migrated at 0.1, so that their agents keep
    # working until they are upgraded (docs/operators/deployment.md, "Rollout of PCS 0.2").
    min_pcs_version = models.CharField(
        "minimum PCS version",
        max_length=8,
        choices=PcsVersion.choices,
        default=PcsVersion.V0_2,
        help_text="PCS of an older version are refused (403 pcs_version_<this>_required). Raise it once "
        "flk_pcs_version_total shows no older PCS from this tenant. For the 'default' tenant the "
        "PCS_MIN_VERSION environment variable decides.",
    )
    rate_per_second = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.001)],
        help_text="Token-bucket refill rate for this tenant; empty uses TOKEN_RATE.",
    )  # fmt: skip
    burst = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(1.0)],
        help_text="Token-bucket size for this tenant; empty uses TOKEN_BURST.",
    )  # fmt: skip
    outcomes_public = models.BooleanField(
        "outcomes readable without an API key",
        default=False,
        help_text="Off: GET /v1/pcs/<pcs_id> needs one of the tenant's API keys, and with none nobody reads. "
        "On: anyone who names the tenant and a pcs_id reads the outcome.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AnnouncingQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # The admin form and any full_clean() refuse an unsigned tenant unless the deployment allows it; the
        # request path refuses its PCS too (keyring.check_signature), so a row written around this still
        # accepts nothing unsigned. The default tenant's algorithm comes from PCS_SIGN_ALG, checked at start.
        from django.core.exceptions import ValidationError

        if self.sign_alg == SignAlg.NONE and self.name != DEFAULT_TENANT and not settings.FLK_ALLOW_UNSIGNED:
            raise ValidationError(
                {"sign_alg": "unsigned PCS are refused unless the service runs with FLK_ALLOW_UNSIGNED=1"}
            )


class SigningKey(models.Model):
    """One key a tenant's agents may sign with; several valid at once make a rotation overlap."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="signing_keys")
    key_id = models.CharField(max_length=64, help_text="Named in errors; never the key itself.")
    algorithm = models.CharField(max_length=8, choices=SignAlg.choices[1:])
    # An HMAC secret must be readable to verify with; restrict database access accordingly.
    secret = models.TextField(blank=True, help_text="HMAC secret (UTF-8).")
    public_key_b64 = models.CharField(
        max_length=64, blank=True, help_text="Ed25519 public key, standard base64 of 32 bytes."
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AnnouncingQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "key_id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key_id"], name="signing_key_unique_per_tenant")]

    def __str__(self) -> str:
        return f"{self.tenant}/{self.key_id} ({self.algorithm})"


class ApiKey(models.Model):
    """A bearer key with which a tenant's clients read their outcomes (GET /v1/pcs/<pcs_id>).

    Only its SHA-256 is stored; the key itself is shown once, when it is issued. Reads need a key unless
    the tenant is marked ``outcomes_public``; a tenant without keys is readable by nobody, so deleting the
    last key closes reads rather than opening them. Deleting a key revokes it.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=64, help_text="What the key is for, e.g. the dashboard that reads outcomes.")
    prefix = models.CharField(max_length=16, unique=True, editable=False,
                              help_text="The key's first characters, to recognise it; not secret.")  # fmt: skip
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AnnouncingQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.tenant}/{self.name} ({self.prefix}…)"

    @staticmethod
    def digest_of(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def issue(self) -> str:
        """Give this new key a secret, save it, and return the secret: the only time it exists in clear."""
        key = f"flk_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
        self.prefix, self.digest = key[:12], self.digest_of(key)
        self.save()
        return key


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
        from ingest.params_rules import PARAM_FIELDS

        return {name: getattr(self, name) for name in PARAM_FIELDS}

    def clean(self) -> None:
        # The invariants live in ingest.params_rules so the admin, the policy DSL and tests share them.
        from django.core.exceptions import ValidationError

        from ingest.params_rules import invariant_errors

        errors = invariant_errors(self.param_values())
        if errors:
            raise ValidationError(errors)


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
        ordering = ["-created_at"]
        verbose_name = "what-if report"

    def __str__(self) -> str:
        return f"what-if of v{self.params.version} on {self.sample_size} PCS ({self.status})"


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

    def __str__(self) -> str:
        return f"batch {self.id} ({self.items} PCS)"
