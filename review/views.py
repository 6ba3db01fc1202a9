"""Thin views of the review pages: parse the request, call review.services, render."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from calibration import services as calibration
from review import services
from review.models import AuditEvent, ReviewItem, ReviewLabel
from review.plot import scaling_plot_svg

AGE_CHOICES = {"1h": 1, "24h": 24, "7d": 24 * 7}


def reviewer_required(view):
    """Anonymous users go to the login page; signed-in users outside ``reviewers`` (and not staff) get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not services.is_reviewer(request.user):
            raise PermissionDenied("only reviewers may see the review queue")
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@reviewer_required
def queue(request: HttpRequest) -> HttpResponse:
    waiting = services.visible_items(request.user).filter(stage__in=services.QUEUED)
    # Filter values go into SQL parameters (flk_site.middleware has dropped any NUL character from them).
    filters = {k: request.GET.get(k, "").strip()[:128] for k in ("tenant", "decision", "regime", "reason", "age")}
    items = waiting
    if filters["tenant"]:
        items = items.filter(tenant=filters["tenant"])
    # Waiting audit samples are blind (ReviewItem.verdict_hidden): filters on the verdict never match them, or
    # filtering by "escalate" or by a failed check would tell which audit samples the verifier escalated.
    if filters["decision"] == "audit":
        items = items.filter(audit_sample=True)
    elif filters["decision"]:
        items = items.filter(decision=filters["decision"], audit_sample=False)
    if filters["regime"]:
        items = items.filter(regime=filters["regime"])
    if filters["reason"]:
        items = items.filter(reasons__contains=[filters["reason"]], audit_sample=False)
    if filters["age"] in AGE_CHOICES:  # older than: what has waited too long first
        items = items.filter(received_at__lte=timezone.now() - timedelta(hours=AGE_CHOICES[filters["age"]]))
    decided = waiting.filter(audit_sample=False)  # counts by decision leave the blind audit samples out
    context = {
        "items": items.order_by("received_at", "id")[:200],
        "shown": items.count(),
        "total": waiting.count(),
        "by_decision": decided.values("decision").annotate(n=Count("id")).order_by("decision"),
        "audit_waiting": waiting.filter(audit_sample=True).count(),
        "second_opinions": waiting.filter(stage=ReviewItem.Stage.SECOND).count(),
        "filters": filters,
        "tenants": waiting.values_list("tenant", flat=True).distinct().order_by("tenant"),
        "regimes": waiting.values_list("regime", flat=True).distinct().order_by("regime"),
        "age_choices": AGE_CHOICES,
        "held": services.held_item(request.user),
        "undoable": services.undoable_label(request.user),
        "now": timezone.now(),
    }
    return render(request, "review/queue.html", context)


@require_POST
@reviewer_required
def take_next(request: HttpRequest) -> HttpResponse:
    item = services.claim_next(request.user)
    if item is None:
        messages.info(request, "The queue is empty: nothing waits for you.")
        return redirect("review:queue")
    return redirect("review:item", item_id=item.pk)


@require_GET
@reviewer_required
def item_page(request: HttpRequest, item_id: int) -> HttpResponse:
    item = get_object_or_404(services.visible_items(request.user).select_related("record", "claimed_by"), pk=item_id)
    pcs = item.record.body
    record = item.record
    scales = pcs.get("scales") or []
    counts = pcs.get("N_j") or {}
    blind = item.stage == ReviewItem.Stage.SECOND
    labels = item.labels.select_related("reviewer").filter(withdrawn_at__isnull=True)
    shard_labels = (
        ReviewLabel.objects.filter(item__tenant=item.tenant, item__shard_id=item.shard_id, withdrawn_at__isnull=True)
        .exclude(item=item)
        .select_related("item", "reviewer")
        .order_by("-created_at")[:20]
    )
    # A blind audit item: nothing of the verdict reaches the page (not even hidden in the HTML) until it is labelled.
    hidden = item.verdict_hidden
    snap = None if hidden else calibration.current_snapshot(item.tenant)
    threshold = snap.threshold if snap and snap.threshold != float("inf") else None
    context = {
        "item": item,
        "record": record,
        "verdict_hidden": hidden,
        "reasons": [] if hidden else record.response.get("reasons", []),
        "conformal": None if hidden else (record.response or {}).get("conformal"),
        "plot": scaling_plot_svg(scales, counts, float(pcs.get("D_hat", 0.0)), record.recomputed_d_hat),
        "pcs_json": json.dumps(pcs, indent=2, sort_keys=True),
        "snapshot": snap,
        "threshold": threshold,
        "over_threshold": not hidden and threshold is not None and item.score is not None and item.score > threshold,
        "blind": blind,
        "labels": [] if blind else labels,
        "shard_labels": shard_labels,
        "mine": item.claimed_by_id == request.user.pk and item.stage in services.QUEUED,
        "undoable": services.undoable_label(request.user),
        "undo_seconds": int(services.undo_seconds()),
    }
    return render(request, "review/item.html", context)


@require_POST
@reviewer_required
def label(request: HttpRequest, item_id: int) -> HttpResponse:
    try:
        services.label_item(request.user, item_id, request.POST.get("label", ""), request.POST.get("note", ""))
    except services.ItemNotFound as exc:
        raise Http404(str(exc)) from exc
    except services.ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review:item", item_id=item_id)
    messages.success(request, f"Labelled {request.POST['label']}. Press u to undo.")
    return _after_action(request)


@require_POST
@reviewer_required
def skip(request: HttpRequest, item_id: int) -> HttpResponse:
    try:
        services.skip_item(request.user, item_id)
    except services.ItemNotFound as exc:
        raise Http404(str(exc)) from exc
    except services.ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review:item", item_id=item_id)
    messages.info(request, "Skipped; the item went back to the queue for someone else.")
    return _after_action(request)


@require_POST
@reviewer_required
def undo(request: HttpRequest) -> HttpResponse:
    try:
        item = services.undo_last(request.user)
    except services.ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review:queue")
    messages.info(request, "Label withdrawn; label the item again.")
    return redirect("review:item", item_id=item.pk)


def _after_action(request: HttpRequest) -> HttpResponse:
    # "Label and next" keeps a shift flowing; a plain label returns to the queue.
    if request.POST.get("then") == "next":
        item = services.claim_next(request.user)
        if item is not None:
            return redirect("review:item", item_id=item.pk)
    return redirect("review:queue")


@require_GET
@reviewer_required
def stats(request: HttpRequest) -> HttpResponse:
    return render(request, "review/stats.html", services.stats(request.user))


@require_GET
@reviewer_required
def audit(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("the audit trail is for staff")
    events = AuditEvent.objects.select_related("user", "item").all()
    tenants = services.allowed_tenants(request.user)
    if tenants is not None:  # a reviewer restricted to some tenants sees only their events
        events = events.filter(tenant__in=tenants)
    if request.GET.get("item"):
        events = events.filter(item_id=request.GET["item"]) if request.GET["item"].isdigit() else events.none()
    return render(request, "review/audit.html", {"events": events[:500]})
