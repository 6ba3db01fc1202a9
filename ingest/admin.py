from __future__ import annotations

from django.contrib import admin

from ingest.models import PcsRecord, SigningKey, Tenant, VerifyParams


class SigningKeyInline(admin.TabularInline):
    model = SigningKey
    extra = 0
    fields = ("key_id", "algorithm", "secret", "public_key_b64", "valid_from", "valid_until")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "enabled", "sign_alg", "created_at")
    list_filter = ("enabled", "sign_alg")
    search_fields = ("name",)
    inlines = [SigningKeyInline]


@admin.register(VerifyParams)
class VerifyParamsAdmin(admin.ModelAdmin):
    list_display = ("version", "is_active", "tol_d", "tol_coh", "delta", "created_by", "created_at", "reason")
    readonly_fields = ("is_active", "created_by", "created_at", "activated_by", "activated_at")


@admin.register(PcsRecord)
class PcsRecordAdmin(admin.ModelAdmin):
    list_display = ("pcs_id", "tenant", "shard_id", "epoch", "decision", "regime", "status_code", "received_at")
    list_filter = ("tenant", "decision", "regime", "received_at")
    search_fields = ("=pcs_id", "shard_id")
    date_hierarchy = "received_at"

    def has_add_permission(self, request):  # outcomes come only from verification
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
