"""The admin console of stored outcomes: read-only, since outcomes come only from verification.

Tenants and keys have their admin in ``tenancy.admin``, VerifyParams versions and what-if in ``policy.admin``.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from calibration.admin import PcsIdPrefixSearch, ReadOnlyAdmin
from ingest.models import PcsRecord

# --- Stored outcomes ---------------------------------------------------------------------------------------


@admin.register(PcsRecord)
class PcsRecordAdmin(PcsIdPrefixSearch, ReadOnlyAdmin):  # outcomes come only from verification
    list_display = ("pcs_id", "tenant", "shard_id", "epoch", "decision", "regime", "status_code", "params_version",
                    "received_at")  # fmt: skip
    list_filter = ("tenant", "decision", "regime", "params_version", "received_at")
    search_fields = ("=pcs_id", "shard_id")
    date_hierarchy = "received_at"
    list_select_related = ("tenant",)
    exclude = ("body", "response")
    readonly_fields = ("pretty_response", "pretty_body")

    @admin.display(description="answer given")
    def pretty_response(self, obj: PcsRecord) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.response, indent=2, ensure_ascii=False))

    @admin.display(description="body as received (staff only)")
    def pretty_body(self, obj: PcsRecord) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.body, indent=2, ensure_ascii=False))
