"""Tenants, the keys their agents sign with, and the API keys their clients read outcomes with.

A tenant is named by the ``X-Tenant-Id`` header. These rows are read on every submission through the
per-process copies of ``tenancy.keyring``; any change to them is announced (``tenancy.config_cache``) so
every process drops its copy. The tables keep their first names (``ingest_tenant``...): the models moved
here from ``ingest`` without moving data (migration ``ingest.0013_tenancy_and_policy_apps``).
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models, transaction

from agent_client.canonical import V0_1, V0_2

TENANT_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
DEFAULT_TENANT = "default"


class AnnouncingQuerySet(models.QuerySet):
    """Bulk updates and deletes skip post_save/post_delete; announce them too so cached copies are dropped."""

    def update(self, **kwargs):
        from tenancy.config_cache import announce_change

        count = super().update(**kwargs)
        transaction.on_commit(announce_change)
        return count

    def delete(self):
        from tenancy.config_cache import announce_change

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
        db_table = "ingest_tenant"
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
        db_table = "ingest_signingkey"
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
        db_table = "ingest_apikey"
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
