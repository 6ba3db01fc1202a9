from __future__ import annotations

from django.contrib import admin

# Reviewers' work is changed only through the review pages, where every change is audited.
from calibration.admin import ReadOnlyAdmin
from review.models import AuditEvent, ReviewerTenant, ReviewItem, ReviewLabel


@admin.register(ReviewerTenant)
class ReviewerTenantAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant"]
    list_filter = ["tenant"]
    search_fields = ["user__username", "tenant"]


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnlyAdmin):
    list_display = [
        "pcs_id",
        "tenant",
        "decision",
        "audit_sample",
        "stage",
        "claimed_by",
        "disagreement",
        "received_at",
    ]
    list_filter = ["stage", "decision", "audit_sample", "disagreement", "tenant"]
    search_fields = ["pcs_id", "shard_id"]


@admin.register(ReviewLabel)
class ReviewLabelAdmin(ReadOnlyAdmin):
    list_display = ["item", "label", "reviewer", "second_opinion", "created_at", "withdrawn_at"]
    list_filter = ["label", "second_opinion"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "user", "action", "item", "detail"]
    list_filter = ["action"]
    search_fields = ["user__username", "item__pcs_id"]
