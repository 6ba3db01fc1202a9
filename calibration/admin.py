from __future__ import annotations

from django.contrib import admin

from calibration.models import (
    CalibrationLabel,
    CalibrationSnapshot,
    DriftReport,
    ExpiredAudit,
    MiscoverageReport,
    PerformanceReport,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services and tasks (labels, snapshots, reviews, outcomes); admins read them.

    Shared by the review and ingest admins.
    """

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


HEX = frozenset("0123456789abcdef")


class PcsIdPrefixSearch:
    """Admin search by the start of a pcs_id, as the pages show it (12 characters), as well as by ``search_fields``.

    A term of hex digits matches the pcs_ids it starts: a range on the unique index of pcs_id (every id starting
    with the term sorts between the term and the term followed by "g"), then the exact prefix test.
    """

    pcs_id_field = "pcs_id"

    def get_search_results(self, request, queryset, search_term):
        results, duplicates = super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        term = search_term.strip().lower()
        if 4 <= len(term) <= 64 and set(term) <= HEX:
            f = self.pcs_id_field
            by_prefix = queryset.filter(**{f"{f}__gte": term, f"{f}__lt": term + "g", f"{f}__startswith": term})
            results = results | by_prefix
        return results, duplicates

    @admin.display(description="PCS", ordering="pcs_id")
    def pcs_prefix(self, obj) -> str:
        return f"{getattr(obj, self.pcs_id_field)[:12]}…"


@admin.register(CalibrationLabel)
class CalibrationLabelAdmin(PcsIdPrefixSearch, ReadOnlyAdmin):
    list_display = ["tenant", "pcs_prefix", "label", "provenance", "decision", "flagged", "score", "labelled_at"]
    list_filter = ["label", "provenance", "flagged", "tenant"]
    search_fields = ["=pcs_id", "origin"]


@admin.register(ExpiredAudit)
class ExpiredAuditAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "pcs_id", "reason", "expired_by", "expired_at"]
    list_filter = ["tenant"]
    search_fields = ["pcs_id"]


@admin.register(CalibrationSnapshot)
class CalibrationSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["id", "tenant", "n", "delta", "threshold", "params_version", "formula_key", "skipped", "created_at"]
    list_filter = ["tenant"]
    exclude = ["scores"]


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "martingale", "martingale_max", "p_value", "level", "n_labels", "drift_detected",
                    "alarm_at", "created_at"]  # fmt: skip
    list_filter = ["drift_detected", "tenant"]


@admin.register(MiscoverageReport)
class MiscoverageReportAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "rate", "ci_low", "ci_high", "delta", "flagged", "considered", "p_value", "adjusted_p",
                    "alarm", "audit_alarm", "labelled", "expired", "waiting", "created_at"]  # fmt: skip
    list_filter = ["alarm", "audit_alarm", "tenant"]


@admin.register(PerformanceReport)
class PerformanceReportAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "power", "power_ci_low", "power_ci_high", "power_labels", "precision",
                    "precision_ci_low", "precision_ci_high", "precision_labels", "created_at"]  # fmt: skip
    list_filter = ["tenant"]
