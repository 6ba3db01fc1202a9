"""The admin console of tenants and their keys: signing keys (with generated secrets shown once) and API keys."""

from __future__ import annotations

import secrets

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from agent_client import signing
from tenancy.models import ApiKey, SignAlg, SigningKey, Tenant

ONE_TIME_SECRETS = "flk_one_time_secrets"  # request attribute: secrets to show on this response only

# --- Tenants and their signing keys ------------------------------------------------------------------------


# An HMAC secret an admin brings must carry at least as much entropy as the ones generated here could.
MIN_BROUGHT_SECRET_CHARS = 32


class SigningKeyForm(forms.ModelForm):
    brought_secret = forms.CharField(
        label="HMAC secret to register",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=f"Optional, new HMAC keys only: a secret your agents already hold (at least "
        f"{MIN_BROUGHT_SECRET_CHARS} characters). Empty: one is generated and shown once.",
    )

    class Meta:
        model = SigningKey
        fields = ("key_id", "algorithm", "public_key_b64", "valid_from", "valid_until")

    def clean(self) -> dict:
        data = super().clean()
        alg = data.get("algorithm")
        pub = (data.get("public_key_b64") or "").strip()
        brought = data.get("brought_secret") or ""
        if brought and (alg != SignAlg.HMAC or self.instance.pk):
            self.add_error("brought_secret", "only a new HMAC key takes a secret; an Ed25519 key takes its public key")
        elif brought and len(brought) < MIN_BROUGHT_SECRET_CHARS:
            self.add_error("brought_secret", f"at least {MIN_BROUGHT_SECRET_CHARS} characters")
        if alg == SignAlg.ED25519:
            if not pub:
                self.add_error("public_key_b64", "an Ed25519 key needs its public key (standard base64 of 32 bytes)")
            else:
                try:
                    signing.load_ed25519_public_key(pub)
                except ValueError:
                    self.add_error("public_key_b64", "not an Ed25519 public key: standard base64 of 32 bytes expected")
        elif alg == SignAlg.HMAC and pub:
            self.add_error("public_key_b64", "an HMAC key has no public key; give its secret or let one be generated")
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end <= start:
            self.add_error("valid_until", "must be later than valid from")
        if self.instance.pk and alg != self.instance.algorithm:
            self.add_error("algorithm", "the algorithm of a key cannot change; add a new key instead")
        return data

    def save(self, commit: bool = True) -> SigningKey:
        key = super().save(commit=False)
        if self.cleaned_data.get("brought_secret") and key.pk is None:
            key.secret = self.cleaned_data["brought_secret"]  # the admin has it: never shown back
        if commit:
            key.save()
        return key


class SigningKeyInline(admin.TabularInline):
    model = SigningKey
    form = SigningKeyForm
    extra = 0
    fields = ("key_id", "algorithm", "public_key_b64", "brought_secret", "secret_state", "valid_from", "valid_until",
              "created_at")  # fmt: skip
    readonly_fields = ("secret_state", "created_at")

    @admin.display(description="HMAC secret")
    def secret_state(self, obj: SigningKey) -> str:
        if obj.pk is None or obj.algorithm != SignAlg.HMAC:
            return "—"
        return "stored (shown once, when the key was added)"


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("name", "prefix", "created_at")
    readonly_fields = ("prefix", "created_at")
    verbose_name_plural = "API keys (to read outcomes; deleting one revokes it, and with none nobody reads)"


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "enabled", "sign_alg", "min_pcs_version", "outcomes_public", "rate_per_second", "burst",
                    "key_count", "created_at")  # fmt: skip
    list_filter = ("enabled", "sign_alg", "min_pcs_version", "outcomes_public")
    search_fields = ("name",)
    fields = ("name", "enabled", "sign_alg", "min_pcs_version", "outcomes_public", "rate_per_second", "burst")
    inlines = [SigningKeyInline, ApiKeyInline]
    actions = ["disable_tenants", "enable_tenants"]

    @admin.display(description="signing keys")
    def key_count(self, obj: Tenant) -> int:
        return obj.signing_keys.count()

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> tuple[str, ...]:
        return ("name",) if obj else ()  # the name is what agents send in X-Tenant-Id

    def has_delete_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return False  # records keep their tenant; disable instead

    @admin.action(description="Disable the selected tenants (their requests get 401)")
    def disable_tenants(self, request: HttpRequest, queryset) -> None:
        count = queryset.update(enabled=False)  # AnnouncingQuerySet: every process drops its copies
        self.message_user(request, f"{count} tenant(s) disabled.")

    @admin.action(description="Enable the selected tenants")
    def enable_tenants(self, request: HttpRequest, queryset) -> None:
        count = queryset.update(enabled=True)
        self.message_user(request, f"{count} tenant(s) enabled.")

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        # Generated secrets go to a page rendered once for this response (one_time_secrets), never into
        # the messages cookie or the session: signed is not encrypted, and a cookie outlives the page.
        shown = request.__dict__.setdefault(ONE_TIME_SECRETS, [])
        keys = formset.save(commit=False)
        for key in keys:
            if isinstance(key, SigningKey) and key.pk is None and key.algorithm == SignAlg.HMAC and not key.secret:
                key.secret = secrets.token_urlsafe(32)
                key.save()
                shown.append(("HMAC secret", key.key_id, key.secret,
                              "into the agent's PCS signing configuration (PCS_HMAC_KEY or its key file)"))  # fmt: skip
            elif isinstance(key, ApiKey) and key.pk is None:
                secret = key.issue()  # saved with only its digest
                shown.append(("API key", key.name, secret,
                              "into the client that reads this tenant's outcomes (Authorization: Bearer …)"))  # fmt: skip
            else:
                key.save()
        for key in formset.deleted_objects:
            key.delete()
        formset.save_m2m()

    def response_add(self, request: HttpRequest, obj: Tenant, post_url_continue=None) -> HttpResponse:
        return self._one_time_secrets(request, obj) or super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Tenant) -> HttpResponse:
        return self._one_time_secrets(request, obj) or super().response_change(request, obj)

    def _one_time_secrets(self, request: HttpRequest, obj: Tenant) -> HttpResponse | None:
        shown = request.__dict__.get(ONE_TIME_SECRETS)
        if not shown:
            return None
        context = {**self.admin_site.each_context(request), "title": f"Copy the new secrets of {obj.name} now",
                   "opts": self.model._meta, "original": obj, "secrets": shown,
                   "continue_url": reverse("admin:tenancy_tenant_change", args=[obj.pk])}  # fmt: skip
        response = TemplateResponse(request, "admin/tenancy/tenant/one_time_secrets.html", context)
        response["Cache-Control"] = "no-store"  # not kept by the browser or any cache on the way
        return response
