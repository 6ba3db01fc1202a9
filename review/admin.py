from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import pluralize

# Reviewers' work is changed only through the review pages, where every change is audited.
from calibration.admin import ReadOnlyAdmin
from review import services
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
    actions = ["expire_audit_samples"]

    @admin.action(
        description="Expire the selected unlabelled audit samples (give up their labels)", permissions=["expire"]
    )
    def expire_audit_samples(self, request: HttpRequest, queryset: QuerySet[ReviewItem]) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        expired = services.expire_audit_items(request.user, selected, reason=f"expired in the admin by {request.user}")
        left = len(selected) - len(expired)
        text = f"Expired {len(expired)} audit sample{pluralize(len(expired))} without a label (recorded in the audit trail)."
        if left:
            text += f" {left} selected item{pluralize(left)} left alone: not an audit sample, or already labelled."
        self.message_user(request, text, messages.WARNING if left else messages.SUCCESS)

    def has_expire_permission(self, request: HttpRequest) -> bool:
        # Expiring records a calibration.ExpiredAudit row: the right to add one is the right to expire.
        return request.user.has_perm("calibration.add_expiredaudit")


@admin.register(ReviewLabel)
class ReviewLabelAdmin(ReadOnlyAdmin):
    list_display = ["item", "label", "reviewer", "second_opinion", "created_at", "withdrawn_at"]
    list_filter = ["label", "second_opinion"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "user", "action", "tenant", "pcs_id", "detail"]
    list_filter = ["action"]
    search_fields = ["user__username", "pcs_id"]
