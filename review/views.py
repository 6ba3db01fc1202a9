"""Thin views of the review pages: parse the request, call review.services, render."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET, require_POST

from calibration import label_files
from calibration import services as calibration
from flk_site.query import ascii_int
from review import services, streams
from review.models import AuditEvent, ReviewItem, ReviewLabel, SavedView
from review.plot import scaling_plot_svg
from review.streams import Stream

PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 100
# In the audit trail's item filter, a number this long is also read as a pcs_id prefix (one shown is 16 long).
MIN_NUMERIC_PCS_PREFIX = 6
SESSION_COUNT = "review_labelled"


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


def _with_stream(url: str, stream: Stream) -> str:
    query = stream.query_string()
    return f"{url}?{query}" if query else url


def _item_url(item_id: int, stream: Stream) -> str:
    return _with_stream(reverse("review:item", args=[item_id]), stream)


def _queue_url(stream: Stream) -> str:
    return _with_stream(reverse("review:queue"), stream)


def _posted_stream(request: HttpRequest) -> Stream:
    return Stream.from_encoded(request.POST.get("stream", ""))


def _page_number(request: HttpRequest) -> int:
    return ascii_int(request.GET.get("page", "1"), max_digits=6) or 1


def _common(request: HttpRequest, stream: Stream) -> dict:
    """What every page of a stream shows: the view's query, the session's count and the undoable labels."""
    return {
        "stream": stream,
        "stream_query": stream.query_string(),
        "session_labelled": request.session.get(SESSION_COUNT, 0),
        "left": services.stream_items(request.user, stream).count(),
        "undoable": services.undoable_labels(request.user),
        "undo_seconds": int(services.undo_seconds()),
        "may_adjudicate": services.may_adjudicate(request.user),
    }


@require_GET
@reviewer_required
def queue(request: HttpRequest) -> HttpResponse:
    stream = Stream.from_query(request.GET)
    waiting = services.visible_items(request.user).exclude(stage=ReviewItem.Stage.DONE)
    items = stream.apply(waiting)
    # Counts follow the filters; counts by decision leave the blind audit samples out.
    decided = items.filter(audit_sample=False)
    page = Paginator(stream.order(items).select_related("claimed_by"), PAGE_SIZE).get_page(_page_number(request))
    now = timezone.now()
    context = {
        **_common(request, stream),
        "page": page,
        "shown": page.paginator.count,
        "total": waiting.count(),
        "by_decision": decided.values("decision").annotate(n=Count("id")).order_by("decision"),
        "audit_waiting": items.filter(audit_sample=True).count(),
        "second_opinions": items.filter(stage=ReviewItem.Stage.SECOND).count(),
        "adjudications": items.filter(stage=ReviewItem.Stage.ADJUDICATION).count(),
        "filters": stream,
        "tenants": waiting.values_list("tenant", flat=True).distinct().order_by("tenant"),
        "regimes": waiting.values_list("regime", flat=True).distinct().order_by("regime"),
        "age_choices": streams.AGE_CHOICES,
        "reasons": streams.REASONS,
        "kinds": streams.KINDS,
        "stages": streams.STAGES,
        "sorts": streams.SORTS,
        # A header link sorts by its column, and again the other way round.
        "age_link": _queue_url(stream.with_sort("-age" if stream.sort == "age" else "age")),
        "score_link": _queue_url(stream.with_sort("score" if stream.sort == "-score" else "-score")),
        "held": services.held_item(request.user),
        "saved_views": SavedView.objects.filter(owner=request.user),
        "claim_cutoff": now - timedelta(seconds=services.claim_seconds()),
        "now": now,
    }
    return render(request, "review/queue.html", context)


@require_POST
@reviewer_required
def save_view(request: HttpRequest) -> HttpResponse:
    stream = _posted_stream(request)
    name = " ".join(request.POST.get("name", "").replace("\x00", "").split())[:80]
    if request.POST.get("delete"):
        SavedView.objects.filter(owner=request.user, name=name).delete()
        messages.info(request, f"Removed the view “{name}”.")
        return redirect("review:queue")
    if not name:
        messages.error(request, "Give the view a name to save it.")
        return redirect(_queue_url(stream))
    try:
        SavedView.objects.create(owner=request.user, name=name, query=stream.query_string())
    except IntegrityError:
        SavedView.objects.filter(owner=request.user, name=name).update(query=stream.query_string())
    messages.success(request, f"Saved the view “{name}”: its link opens the same stream for anyone.")
    return redirect(_queue_url(stream))


@require_POST
@reviewer_required
def take_next(request: HttpRequest) -> HttpResponse:
    stream = _posted_stream(request)
    item = services.claim_next(request.user, stream)
    if item is None:
        messages.info(request, "The queue is empty: nothing waits for you." if not stream.filtered
                      else "Nothing waits for you in this view.")  # fmt: skip
        return redirect(_queue_url(stream))
    return redirect(_item_url(item.pk, stream))


@require_POST
@reviewer_required
def claim(request: HttpRequest, item_id: int) -> HttpResponse:
    stream = _posted_stream(request)
    try:
        services.claim_item(request.user, item_id)
    except services.ItemNotFound as exc:
        raise Http404(str(exc)) from exc
    except services.ReviewError as exc:
        messages.error(request, str(exc))
    return redirect(_item_url(item_id, stream))


@require_GET
@reviewer_required
def item_page(request: HttpRequest, item_id: int) -> HttpResponse:
    item = get_object_or_404(services.visible_items(request.user).select_related("record", "claimed_by"), pk=item_id)
    stream = Stream.from_query(request.GET)
    pcs = item.record.body
    record = item.record
    scales = pcs.get("scales") or []
    counts = pcs.get("N_j") or {}
    # The other labels stay hidden while more independent labels are wanted (a blind second opinion).
    blind = item.stage in (ReviewItem.Stage.FIRST, ReviewItem.Stage.SECOND)
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
    now = timezone.now()
    cutoff = now - timedelta(seconds=services.claim_seconds())
    held_by_other = (
        item.claimed_by_id not in (None, request.user.pk) and item.claimed_at is not None and item.claimed_at >= cutoff
    )
    typical = calibration.typical_signals(item.tenant)
    signals = [
        ("D̂ claimed", record.d_hat, typical.get("D_hat")),
        ("D̂ recomputed", record.recomputed_d_hat, typical.get("D_hat")),
        ("coh★", record.coh_star, typical.get("coh_star")),
        ("r", record.r, typical.get("r")),
    ]
    context = {
        **_common(request, stream),
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
        "signals": [(name, value, rng, None if rng is None else rng.contains(value)) for name, value, rng in signals],
        "mine": item.claimed_by_id == request.user.pk and item.stage != ReviewItem.Stage.DONE and not held_by_other,
        "refusal": services.label_refusal(request.user, item, now),
        "held_by_other": held_by_other,
        "claim_until": item.claimed_at + timedelta(seconds=services.claim_seconds()) if item.claimed_at else None,
        "adjudicating": item.stage == ReviewItem.Stage.ADJUDICATION,
        "reason_choices": streams.REASONS,
        "queue_url": _queue_url(stream),
    }
    return render(request, "review/item.html", context)


def _tags(request: HttpRequest) -> list[str]:
    return [*request.POST.getlist("tag"), request.POST.get("tags", "")]


@require_POST
@reviewer_required
def label(request: HttpRequest, item_id: int) -> HttpResponse:
    stream = _posted_stream(request)
    value = request.POST.get("label", "")
    try:
        row = services.label_item(request.user, item_id, value, request.POST.get("note", ""), _tags(request))
    except services.ItemNotFound as exc:
        raise Http404(str(exc)) from exc
    except services.ReviewError as exc:
        messages.error(request, str(exc))
        return redirect(_item_url(item_id, stream))
    request.session[SESSION_COUNT] = request.session.get(SESSION_COUNT, 0) + 1
    messages.success(request, f"Labelled {row.item.tenant} / {row.item.pcs_id[:12]} {value}. Press u to undo.")
    return _next_in_stream(request, stream)


@require_POST
@reviewer_required
def skip(request: HttpRequest, item_id: int) -> HttpResponse:
    stream = _posted_stream(request)
    try:
        services.skip_item(request.user, item_id)
    except services.ItemNotFound as exc:
        raise Http404(str(exc)) from exc
    except services.ReviewError as exc:
        messages.error(request, str(exc))
        return redirect(_item_url(item_id, stream))
    messages.info(request, "Skipped; the item went back to the queue for someone else.")
    return _next_in_stream(request, stream)


def _next_in_stream(request: HttpRequest, stream: Stream) -> HttpResponse:
    # One keystroke per item: after a label or a skip the stream's next item opens, claimed.
    if request.POST.get("then") != "queue":
        item = services.claim_next(request.user, stream)
        if item is not None:
            return redirect(_item_url(item.pk, stream))
        messages.info(request, "Nothing left in this view." if stream.filtered else "Nothing left in the queue.")
    return redirect(_queue_url(stream))


@require_POST
@reviewer_required
def undo(request: HttpRequest) -> HttpResponse:
    stream = _posted_stream(request)
    raw = request.POST.get("label_id", "")
    try:
        item = services.undo_last(request.user, ascii_int(raw))
    except services.ReviewError as exc:
        messages.error(request, str(exc))
        return redirect(_queue_url(stream))
    request.session[SESSION_COUNT] = max(0, request.session.get(SESSION_COUNT, 0) - 1)
    messages.info(request, f"Label of {item.tenant} / {item.pcs_id[:12]} withdrawn; label the item again.")
    return redirect(_item_url(item.pk, stream))


@require_GET
@reviewer_required
def disagreements(request: HttpRequest) -> HttpResponse:
    items = services.visible_items(request.user).filter(disagreement=True)
    q = streams.pcs_prefix_filter(request.GET.get("q", ""))
    if q is not None:
        items = items.filter(q)
    waiting_first = items.order_by("stage", "-received_at", "-id")  # "adjudication" sorts before "done"
    page = Paginator(waiting_first.prefetch_related("labels__reviewer"), PAGE_SIZE).get_page(_page_number(request))
    rows = []
    for item in page:
        standing = [row for row in item.labels.all() if row.withdrawn_at is None]
        rows.append({"item": item, "labels": sorted(standing, key=lambda r: (r.adjudication, r.created_at))})
    context = {
        "page": page,
        "rows": rows,
        "waiting": items.filter(stage=ReviewItem.Stage.ADJUDICATION).count(),
        "may_adjudicate": services.may_adjudicate(request.user),
        "adjudication_stream": Stream(stage="adjudication"),
        "q": request.GET.get("q", "")[:64],
    }
    return render(request, "review/disagreements.html", context)


@require_GET
@reviewer_required
def stats(request: HttpRequest) -> HttpResponse:
    return render(request, "review/stats.html", services.stats(request.user))


AUDIT_COLUMNS = ("at", "user", "action", "tenant", "pcs_id", "item_id", "detail")


def _day(text: str, *, end: bool = False) -> datetime | None:
    day = parse_date(text) if len(text) == 10 else None
    if day is None:
        return None
    moment = datetime.combine(day, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    return moment + timedelta(days=1) if end else moment


@require_GET
@reviewer_required
def audit(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("the audit trail is for staff")
    events = AuditEvent.objects.select_related("user").all()
    tenants = services.allowed_tenants(request.user)
    if tenants is not None:  # a reviewer restricted to some tenants sees only their events
        events = events.filter(tenant__in=tenants)
    filters = {
        k: request.GET.get(k, "").strip()[:64] for k in ("reviewer", "tenant", "item", "action", "since", "until")
    }
    if filters["reviewer"]:
        events = events.filter(user__username=filters["reviewer"])
    if filters["tenant"]:
        events = events.filter(tenant=filters["tenant"])
    if filters["item"]:
        # An item id or a pcs_id prefix, as shown everywhere. A pcs_id is hex, so its first digits can all be
        # decimal (1 prefix in 100 of ten characters): a number long enough to be a prefix matches both.
        item_id = ascii_int(filters["item"])
        prefix = streams.pcs_prefix_filter(filters["item"])
        if item_id is not None and len(filters["item"]) >= MIN_NUMERIC_PCS_PREFIX:
            events = events.filter(Q(item_id=item_id) | prefix)
        elif item_id is not None:
            events = events.filter(item_id=item_id)
        else:
            events = events.filter(prefix) if prefix is not None else events.none()
    if filters["action"]:
        events = (
            events.filter(action=filters["action"]) if filters["action"] in AuditEvent.Action.values else events.none()
        )
    for key, end in (("since", False), ("until", True)):
        if filters[key]:
            moment = _day(filters[key], end=end)
            if moment is None:
                events = events.none()
            else:
                events = events.filter(**({"at__lt": moment} if end else {"at__gte": moment}))
    if request.GET.get("format") == "csv":
        return _audit_csv(events)
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(_page_number(request))
    context = {
        "page": page,
        "filters": filters,
        "actions": AuditEvent.Action.choices,
        "query": _encode({k: v for k, v in filters.items() if v}),
    }
    return render(request, "review/audit.html", context)


def _encode(values: dict[str, str]) -> str:
    return urlencode(values)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _audit_csv(events) -> StreamingHttpResponse:
    writer = csv.writer(_Echo(), lineterminator="\n")

    def rows():
        yield writer.writerow(AUDIT_COLUMNS)
        for e in events.iterator(chunk_size=2000):
            yield writer.writerow([e.at.isoformat(), e.user.get_username(), e.action, e.tenant, e.pcs_id,
                                   e.item_id or "", e.detail])  # fmt: skip

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="review-audit.csv"'
    return response


# --- Labels out and in -------------------------------------------------------------------------------------


def _label_scope(request: HttpRequest, stream: Stream) -> list[str] | None:
    """The tenants whose labels to export: the one asked for, else all the reviewer may see; [] for none."""
    allowed = services.allowed_tenants(request.user)
    if stream.tenant:
        return [stream.tenant] if allowed is None or stream.tenant in allowed else []
    return allowed


@require_GET
@reviewer_required
def labels_page(request: HttpRequest) -> HttpResponse:
    stream = Stream.from_query(request.GET)
    tenants = services.visible_items(request.user).values_list("tenant", flat=True).distinct().order_by("tenant")
    context = {
        "stream": stream,
        "stream_query": stream.query_string(),
        "tenants": tenants,
        "kinds": {"audit": "audit", "escalation": "escalation", "imported": "imported"},
        "may_import": request.user.has_perm("calibration.add_calibrationlabel"),
    }
    return render(request, "review/labels.html", context)


@require_GET
@reviewer_required
def labels_export(request: HttpRequest, fmt: str) -> HttpResponse:
    if fmt not in label_files.FORMATS:
        raise Http404("no such format")
    stream = Stream.from_query(request.GET)
    provenance = stream.kind if stream.kind in ("audit", "escalation", "imported") else ""
    prefix = stream.q if streams.pcs_prefix_filter(stream.q) is not None else ""
    scope = _label_scope(request, stream)
    if (stream.q and not prefix) or (stream.kind and not provenance) or scope == []:
        rows = iter(())
    else:
        rows = label_files.label_rows(
            scope,
            provenance=provenance,
            decision=stream.decision if stream.decision in ("escalate", "reject", "accept") else "",
            pcs_prefix=prefix,
        )

    response = StreamingHttpResponse(
        _export(rows, fmt), content_type="text/csv" if fmt == "csv" else "application/x-ndjson"
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="labels-{stamp}.{fmt}"'
    return response


def _export(rows, fmt: str):
    """The file of ``label_files.write_labels`` in pieces of 500 rows (one header for CSV)."""
    buffer = io.StringIO()
    batch: list[dict] = []
    first = True
    for row in rows:
        batch.append(row)
        if len(batch) == 500:
            yield _written(batch, buffer, fmt, header=first)
            batch, first = [], False
    if batch or first:
        yield _written(batch, buffer, fmt, header=first)


def _written(batch: list[dict], buffer: io.StringIO, fmt: str, *, header: bool) -> str:
    buffer.seek(0)
    buffer.truncate()
    label_files.write_labels(batch, buffer, fmt)
    text = buffer.getvalue()
    return text if header or fmt != "csv" else text.split("\n", 1)[1]


@require_POST
@reviewer_required
def labels_import(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("calibration.add_calibrationlabel"):
        raise PermissionDenied("importing labels needs the permission to add calibration labels")
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a CSV or JSON Lines file of labels.")
        return redirect("review:labels")
    if upload.size > 50 * 1024 * 1024:
        messages.error(request, "The file is larger than 50 MiB; import it with manage.py import_labels.")
        return redirect("review:labels")
    try:
        text = upload.read().decode("utf-8-sig")
        fmt = label_files.format_of(upload.name or "", request.POST.get("format") or None)
        summary = label_files.import_labels(
            text, fmt, origin=f"import:{request.user.get_username()}", tenants=services.allowed_tenants(request.user),
            dry_run=bool(request.POST.get("dry_run")),
        )  # fmt: skip
    except UnicodeDecodeError:
        messages.error(request, "The file is not UTF-8 text.")
        return redirect("review:labels")
    except (label_files.LabelFileError, ValueError) as exc:
        messages.error(request, str(exc))
        return redirect("review:labels")
    verb = "Would import" if summary.dry_run else "Imported"
    messages.success(request, f"{verb} {summary.rows} rows: {summary.created} new, {summary.updated} changed, "
                     f"{summary.unchanged} unchanged, {summary.downgraded} audit claims stored as imported, "
                     f"{summary.skipped_tenants} of other tenants left out.")  # fmt: skip
    return redirect("review:labels")
