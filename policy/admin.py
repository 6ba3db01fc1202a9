"""The admin console of the verification policy: VerifyParams versions (drafts, policy text, what-if, diff,
activation) and what-if reports.

A wrong parameter silently widens what is accepted, so changes here are deliberate (a reason, a confirmation
when a tolerance widens), explained (author, time, diff, what-if) and reversible (activate an older version).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from calibration.models import CalibrationLabel
from flk_site.query import ascii_int
from ingest.models import PcsRecord
from policy import dsl as policy_dsl
from policy import versions, whatif
from policy.dsl import PolicyError, compile_policy
from policy.models import VerifyParams, WhatIfReport
from policy.params_rules import PARAM_FIELDS, changed_fields, widened_fields

CONFIRM_WIDENING = "_confirm_widening"

# --- VerifyParams versions ---------------------------------------------------------------------------------


class VerifyParamsForm(forms.ModelForm):
    reason = forms.CharField(
        label="reason for this version",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required: why this change. Saving creates a new draft version; nothing is edited in place.",
    )

    class Meta:
        model = VerifyParams
        fields = (*PARAM_FIELDS, "reason")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["reason"] = ""  # each version states its own reason

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError("say why this version is needed")
        return reason

    def clean(self) -> dict:
        data = super().clean()
        if not self.errors:  # a version identical to an existing one is not created (nor its copy saved)
            existing = versions.identical_version({name: data[name] for name in PARAM_FIELDS})
            if existing is not None:
                raise versions.IdenticalVersion(existing)
        return data


@admin.register(VerifyParams)
class VerifyParamsAdmin(admin.ModelAdmin):
    form = VerifyParamsForm
    change_form_template = "admin/policy/verifyparams/change_form.html"
    change_list_template = "admin/policy/verifyparams/change_list.html"
    list_display = ("__str__", "state", "tol_d", "tol_coh", "budget_tol", "delta", "reject_delta",
                    "created_by", "created_at", "activated_by", "activated_at", "reason")  # fmt: skip
    list_display_links = ("__str__",)
    list_filter = ("is_active",)
    readonly_fields = ("version", "is_active", "created_by", "created_at", "activated_by", "activated_at")
    fieldsets = (
        ("Version", {"fields": ("version", "is_active", "created_by", "created_at", "activated_by", "activated_at")}),
        ("Tolerances", {"fields": ("tol_d", "tol_coh", "budget_tol")}),
        ("Budget formula", {"fields": ("base", "alpha", "beta", "gamma", "d0")}),
        ("Regimes", {"fields": ("sticky_coh_min", "sticky_d_max", "non_sticky_d_min")}),
        (
            "Scoring and decision",
            {
                "fields": (
                    "w_d",
                    "w_coh",
                    "w_r",
                    "r0",
                    "score_kind",
                    "delta",
                    "reject_delta",
                    "n_min",
                    "audit_rate",
                    "bootstrap_audit_rate",
                    "dedup_ttl_days",
                ),
                "description": (
                    "A benign PCS is escalated or rejected with probability at most delta (split conformal over the "
                    "tenant's benign audit labels). Reject needs a p-value of at most reject_delta, and the smallest "
                    "p-value n calibration scores can give is 1/(n+1): rejection stays off for a tenant until its "
                    "calibration set holds n ≥ 1/reject_delta − 1 scores (199 at 0.005); until then such PCS are "
                    "escalated. A rejection means only that a benign PCS is rejected with probability at most "
                    "reject_delta; it is not evidence of an anomaly."
                ),
            },
        ),
        ("Change", {"fields": ("reason",)}),
    )
    actions = ["activate_selected"]

    @admin.display(description="state")
    def state(self, obj: VerifyParams) -> str:
        if obj.is_active:
            return "active"
        return "previously active" if obj.activated_at else "draft"

    def has_delete_permission(self, request: HttpRequest, obj: VerifyParams | None = None) -> bool:
        # Versions that are or were in service are the audit history; a draft never activated may go.
        if obj is not None and not versions.deletable(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one draft at a time, from its own page
        return actions

    def delete_model(self, request: HttpRequest, obj: VerifyParams) -> None:
        try:
            versions.delete_draft(obj.pk)
        except versions.DeletionRefused as exc:
            raise PermissionDenied(str(exc)) from exc

    def delete_queryset(self, request: HttpRequest, queryset) -> None:  # pragma: no cover - no bulk action
        for obj in queryset:
            self.delete_model(request, obj)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        source = versions.active_version()
        from_pk = ascii_int(request.GET.get("from", ""))
        if from_pk is not None:
            source = VerifyParams.objects.filter(pk=from_pk).first() or source
        return source.param_values() if source else {}

    # Saving never updates a row: the edited values become a new draft version.
    def save_model(self, request: HttpRequest, obj: VerifyParams, form, change: bool) -> None:
        try:
            versions.store_draft(obj, request.user)
        except IntegrityError as exc:  # pragma: no cover - see store_draft
            raise ValidationError(str(exc)) from exc

    def _after_save(self, request: HttpRequest, obj: VerifyParams) -> HttpResponse:
        self.message_user(
            request,
            f"Saved as draft v{obj.version}. It is not in service until you activate it; run a what-if first.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:policy_verifyparams_change", args=[obj.pk]))

    def response_add(self, request: HttpRequest, obj: VerifyParams, post_url_continue=None) -> HttpResponse:
        return self._after_save(request, obj)

    def response_change(self, request: HttpRequest, obj: VerifyParams) -> HttpResponse:
        return self._after_save(request, obj)

    def changeform_view(self, request: HttpRequest, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and CONFIRM_WIDENING not in request.POST:
            page = self._widening_confirmation(request, object_id)
            if page is not None:
                return page
        extra_context = {**(extra_context or {}), "active_version": versions.active_version()}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _widening_confirmation(self, request: HttpRequest, object_id) -> HttpResponse | None:
        """An intermediate page when a valid change widens a tolerance relative to the version in service."""
        obj = self.get_object(request, object_id) if object_id else None
        form = self.get_form(request, obj, change=obj is not None)(request.POST, instance=obj)
        if not form.is_valid():
            return None  # the normal form shows the errors
        base = versions.active_version()
        if base is None:
            return None
        new_values = {name: form.cleaned_data[name] for name in PARAM_FIELDS}
        widened = widened_fields(base.param_values(), new_values)
        if not widened:
            return None
        return self._confirm_widening_page(request, base, new_values, widened)

    def _confirm_widening_page(
        self, request: HttpRequest, base: VerifyParams, new_values: dict, widened: list[str]
    ) -> HttpResponse:
        """The page that lists the widened fields and re-posts the same request once confirmed."""
        rows = [(VerifyParams._meta.get_field(n).verbose_name, getattr(base, n), new_values[n]) for n in widened]
        context = {
            **self.admin_site.each_context(request),
            "title": "Confirm a wider tolerance",
            "opts": self.model._meta,
            "base": base,
            "rows": rows,
            "post_items": [(k, v) for k in request.POST for v in request.POST.getlist(k) if k != "csrfmiddlewaretoken"],
            "confirm_name": CONFIRM_WIDENING,
        }
        return TemplateResponse(request, "admin/policy/verifyparams/confirm_widening.html", context)

    def get_urls(self):
        own = [
            path(
                "<int:pk>/activate/",
                self.admin_site.admin_view(self.activate_view),
                name="policy_verifyparams_activate",
            ),
            path("<int:pk>/whatif/", self.admin_site.admin_view(self.whatif_view), name="policy_verifyparams_whatif"),
            path("<int:pk>/diff/", self.admin_site.admin_view(self.diff_view), name="policy_verifyparams_diff"),
            path("policy/", self.admin_site.admin_view(self.policy_view), name="policy_verifyparams_policy"),
        ]
        return own + super().get_urls()

    @admin.action(description="Activate the selected version (exactly one; rollback = activate an older one)")
    def activate_selected(self, request: HttpRequest, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:policy_verifyparams_activate", args=[queryset.get().pk]))

    def _context(self, request: HttpRequest, obj: VerifyParams, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta,
                "original": obj, **extra}  # fmt: skip

    def activate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        obj = get_object_or_404(VerifyParams, pk=pk)
        active = versions.active_version()
        if request.method == "POST":
            try:
                obj = versions.activate_version(obj.pk, request.user)
            except versions.ActivationRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request, f"v{obj.version} is now active; the next submission uses it.", messages.SUCCESS
                )
            return HttpResponseRedirect(reverse("admin:policy_verifyparams_changelist"))
        diff = _diff_rows(active, obj) if active else []
        widened = widened_fields(active.param_values(), obj.param_values()) if active else []
        return TemplateResponse(request, "admin/policy/verifyparams/activate.html",
                                self._context(request, obj, f"Activate v{obj.version}?", active=active, diff=diff,
                                              widened=widened, reports=obj.whatif_reports.all()[:3]))  # fmt: skip

    def whatif_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        obj = get_object_or_404(VerifyParams, pk=pk)
        error = ""
        size = str(whatif.DEFAULT_SAMPLE_SIZE)
        if request.method == "POST":
            size = request.POST.get("sample_size", "").strip()
            number = ascii_int(size)
            if number is not None and 1 <= number <= whatif.MAX_SAMPLE_SIZE:
                report = whatif.request_whatif(obj, number, request.user)
                report.refresh_from_db(fields=["status", "error"])
                if report.status == WhatIfReport.Status.FAILED:
                    self.message_user(
                        request, f"What-if of v{obj.version} not started: {report.error}.", messages.ERROR
                    )
                else:
                    self.message_user(request, f"What-if of v{obj.version} on the last {size} PCS started.")
                return HttpResponseRedirect(reverse("admin:policy_whatifreport_change", args=[report.pk]))
            error = f"a whole number within [1, {whatif.MAX_SAMPLE_SIZE}]"
        return TemplateResponse(request, "admin/policy/verifyparams/whatif.html",
                                self._context(request, obj, f"What-if of v{obj.version}", size=size, error=error,
                                              reports=obj.whatif_reports.all()[:10]))  # fmt: skip

    def policy_view(self, request: HttpRequest) -> HttpResponse:
        """Paste a policy (policy.dsl); it compiles over the version in service into a new draft."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        text, reason, error = request.POST.get("policy", ""), request.POST.get("reason", ""), ""
        if request.method == "POST":
            base = versions.active_version()
            try:
                if not reason.strip():
                    raise ValidationError("say why this version is needed (reason)")
                values = compile_policy(text, base.param_values() if base else VerifyParams().param_values())
                existing = versions.identical_version(values)  # said before any confirmation is asked
                if existing is not None:
                    raise versions.IdenticalVersion(existing)
                # The same confirmation as the form: a policy that widens acceptance is saved only when confirmed.
                widened = widened_fields(base.param_values(), values) if base else []
                if widened and CONFIRM_WIDENING not in request.POST:
                    return self._confirm_widening_page(request, base, values, widened)
                draft = versions.create_draft(values, reason, request.user)
            except PolicyError as exc:
                error = str(exc)
            except versions.IdenticalVersion as exc:
                nothing = "The policy changes nothing: " if exc.existing.is_active else ""
                error = f"{nothing}{exc.messages[0]}."
            except ValidationError as exc:
                error = "; ".join(exc.messages)
            else:
                return self._after_save(request, draft)
        return TemplateResponse(request, "admin/policy/verifyparams/policy.html",
                                {**self.admin_site.each_context(request), "title": "New draft from a policy",
                                 "opts": self.model._meta, "policy": text, "reason": reason, "error": error,
                                 "example": policy_dsl.__doc__.split("Example::")[1].split("Anything")[0]})  # fmt: skip

    def diff_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = get_object_or_404(VerifyParams, pk=pk)
        other_pk = ascii_int(request.GET.get("against", ""))
        other = (VerifyParams.objects.filter(pk=other_pk).first() if other_pk is not None else None) or (
            versions.active_version()
        )
        return TemplateResponse(request, "admin/policy/verifyparams/diff.html",
                                self._context(request, obj, f"v{obj.version} compared with v{other.version if other else '?'}",
                                              other=other, diff=_diff_rows(other, obj) if other else [],
                                              choices=VerifyParams.objects.all()))  # fmt: skip


def _diff_rows(old: VerifyParams, new: VerifyParams) -> list[dict]:
    old_values, new_values = old.param_values(), new.param_values()
    widened = set(widened_fields(old_values, new_values))
    return [
        {"field": VerifyParams._meta.get_field(name).verbose_name, "name": name, "old": old_values[name],
         "new": new_values[name], "widens": name in widened}
        for name in changed_fields(old_values, new_values)
    ]  # fmt: skip


@admin.register(WhatIfReport)
class WhatIfReportAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "params",
        "baseline_version",
        "status",
        "examined",
        "changed",
        "created_by",
        "created_at",
    )
    list_filter = ("status",)
    readonly_fields = ("params", "baseline_version", "sample_size", "status", "examined", "changed",
                       "transition_table", "calibration_table", "example_table", "error", "created_by", "created_at",
                       "finished_at")  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # started from a version's What-if page

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="decision changes")
    def transition_table(self, obj: WhatIfReport) -> str:
        if not obj.transitions:
            return "none" if obj.status == WhatIfReport.Status.DONE else "—"
        items = format_html_join("", "<li>{}: {}</li>", sorted(obj.transitions.items()))
        return format_html("<ul class='whatif-transitions'>{}</ul>", items)

    @admin.display(description="calibration")
    def calibration_table(self, obj: WhatIfReport) -> str:
        if not obj.calibration:
            return "—"

        def fmt(value, percent=False) -> str:
            if value is None:
                return "—"
            return f"{100 * value:.1f} %" if percent else f"{value:.4g}"

        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} → {}</td><td>{} → {}</td><td>{}</td><td>{} → {}</td></tr>",
            (
                (c["tenant"], c["n_before"], c["n_after"], fmt(c["threshold_before"]), fmt(c["threshold_after"]),
                 c["audited"], fmt(c["not_accepted_before"], True), fmt(c["not_accepted_after"], True))
                for c in obj.calibration
            ),
        )  # fmt: skip
        return format_html(
            "<table class='whatif-calibration'><thead><tr><th>tenant</th><th>calibration n</th><th>threshold</th>"
            "<th>audited PCS</th><th>audited PCS not accepted</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="PCS whose decision changes (examples)")
    def example_table(self, obj: WhatIfReport) -> str:
        if not obj.examples:
            return "—"
        # Labels are read now, not when the report ran: a PCS labelled since shows its label.
        labels = {
            (row.tenant, row.pcs_id): row.label
            for row in CalibrationLabel.objects.filter(
                tenant__in={e["tenant"] for e in obj.examples}, pcs_id__in={e["pcs_id"] for e in obj.examples}
            ).only("tenant", "pcs_id", "label")
        }
        records = dict(
            PcsRecord.objects.filter(pcs_id__in={e["pcs_id"] for e in obj.examples}).values_list("pcs_id", "pk")
        )
        labelled = sum((e["tenant"], e["pcs_id"]) in labels for e in obj.examples)

        def pcs_link(pcs_id: str) -> str:
            pk = records.get(pcs_id)
            if pk is None:
                return format_html("<code>{}</code>", pcs_id[:16] + "…")
            url = reverse("admin:ingest_pcsrecord_change", args=[pk])
            return format_html('<a href="{}"><code>{}</code></a>', url, pcs_id[:16] + "…")

        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    pcs_link(e["pcs_id"]),
                    e["tenant"],
                    e["transition"],
                    ", ".join(e["reasons_before"]) or "—",
                    ", ".join(e["reasons_after"]) or "—",
                    labels.get((e["tenant"], e["pcs_id"]), "not labelled"),
                )
                for e in obj.examples
            ),
        )
        return format_html(
            "<p>{} of these {} PCS carry a review label.</p>"
            "<table class='whatif-examples'><thead><tr><th>PCS</th><th>tenant</th><th>decision</th>"
            "<th>failed checks before</th><th>failed checks after</th><th>label</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            labelled,
            len(obj.examples),
            rows,
        )
