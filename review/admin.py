from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import pluralize

# Reviewers' work is changed only through the review pages, where every change is audited.
from calibration.admin import PcsIdPrefixSearch, ReadOnlyAdmin
from review import services
from review.models import AuditEvent, ReviewerTenant, ReviewItem, ReviewLabel, SavedView
from tenancy.models import Tenant


class ReviewerTenantForm(forms.ModelForm):
    """The tenant is chosen among the existing ones: a misspelt name would silently empty the reviewer's queue."""

    tenant = forms.ChoiceField(choices=())

    class Meta:
        model = ReviewerTenant
        fields = ["user", "tenant"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = list(Tenant.objects.order_by("name").values_list("name", flat=True))
        current = self.instance.tenant if self.instance and self.instance.pk else None
        if current and current not in names:  # a row naming a tenant since removed stays visible, marked
            names.append(current)
        self.fields["tenant"].choices = [("", "---------")] + [(n, n) for n in names]


@admin.register(ReviewerTenant)
class ReviewerTenantAdmin(admin.ModelAdmin):
    form = ReviewerTenantForm
    list_display = ["user", "tenant"]
    list_filter = ["tenant"]
    search_fields = ["user__username", "tenant"]


class ReviewerTenantInline(admin.TabularInline):
    model = ReviewerTenant
    form = ReviewerTenantForm
    extra = 1
    verbose_name = "tenant this reviewer may review"
    verbose_name_plural = "Tenants this reviewer may review (none: every tenant)"


admin.site.unregister(User)


@admin.register(User)
class ReviewerUserAdmin(UserAdmin):
    """Django's user admin with the reviewer's tenants (several allowed) on the same page."""

    inlines = [*UserAdmin.inlines, ReviewerTenantInline]


@admin.register(ReviewItem)
class ReviewItemAdmin(PcsIdPrefixSearch, ReadOnlyAdmin):
    # Short columns: the list fits 1280 px beside the admin's navigation and the filters.
    list_display = ["pcs_prefix", "tenant", "decision", "audit", "stage", "holder", "received"]
    list_select_related = ["claimed_by"]
    list_filter = ["stage", "decision", "audit_sample", "disagreement", "tenant"]
    search_fields = ["=pcs_id", "shard_id"]
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

    @admin.display(description="held by", ordering="claimed_by__username")
    def holder(self, obj: ReviewItem) -> str:
        return obj.claimed_by.get_username() if obj.claimed_by else "-"

    @admin.display(description="received", ordering="received_at")
    def received(self, obj: ReviewItem) -> str:
        return f"{obj.received_at:%Y-%m-%d %H:%M}"

    @admin.display(description="audit", boolean=True, ordering="audit_sample")
    def audit(self, obj: ReviewItem) -> bool:
        return obj.audit_sample

    def has_expire_permission(self, request: HttpRequest) -> bool:
        # Expiring records a calibration.ExpiredAudit row: the right to add one is the right to expire.
        return request.user.has_perm("calibration.add_expiredaudit")


@admin.register(ReviewLabel)
class ReviewLabelAdmin(ReadOnlyAdmin):
    list_display = ["pcs", "label", "reviewer", "round", "given", "withdrawn"]
    list_select_related = ["item", "reviewer"]
    list_filter = ["label", "second_opinion", "adjudication"]
    search_fields = ["^item__pcs_id", "reviewer__username"]

    @admin.display(description="PCS", ordering="item__pcs_id")
    def pcs(self, obj: ReviewLabel) -> str:
        return f"{obj.item.tenant} / {obj.item.pcs_id[:12]}…"

    @admin.display(description="round")
    def round(self, obj: ReviewLabel) -> str:
        return "adjudication" if obj.adjudication else "independent" if obj.second_opinion else "first"

    @admin.display(description="given", ordering="created_at")
    def given(self, obj: ReviewLabel) -> str:
        return f"{obj.created_at:%Y-%m-%d %H:%M}"

    @admin.display(description="withdrawn", ordering="withdrawn_at")
    def withdrawn(self, obj: ReviewLabel) -> str:
        return f"{obj.withdrawn_at:%Y-%m-%d %H:%M}" if obj.withdrawn_at else "-"


@admin.register(AuditEvent)
class AuditEventAdmin(PcsIdPrefixSearch, ReadOnlyAdmin):
    list_display = ["at", "user", "action", "tenant", "pcs_prefix", "detail"]
    list_filter = ["action"]
    search_fields = ["user__username", "=pcs_id"]


@admin.register(SavedView)
class SavedViewAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "query", "created_at"]
    search_fields = ["name", "owner__username"]
