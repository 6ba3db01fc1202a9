"""The business operations of the review queue: enqueue, claim, label, undo, skip, and the figures.

Views and the ``outcome_stored`` receiver call these; none re-implements one. Labels go to calibration
through ``calibration.services`` (review -> ingest -> calibration, never the other way round).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from calibration import services as calibration
from review.models import REVIEWERS_GROUP, AuditEvent, ReviewerTenant, ReviewItem, ReviewLabel
from review.streams import Stream

log = logging.getLogger("flk.review")
QUEUED = (ReviewItem.Stage.FIRST, ReviewItem.Stage.SECOND)


class ReviewError(Exception):
    """A review action that cannot be done now (claim lost, undo window over...); the message is for people."""


class ItemNotFound(ReviewError):
    """No such item, or one of a tenant the reviewer may not see."""


def claim_seconds() -> float:
    return float(getattr(settings, "FLK_REVIEW_CLAIM_SECONDS", 600))


def undo_seconds() -> float:
    return float(getattr(settings, "FLK_REVIEW_UNDO_SECONDS", 300))


def second_opinion_rate() -> float:
    return float(getattr(settings, "FLK_REVIEW_SECOND_OPINION_RATE", 0.1))


# --- Who may review what --------------------------------------------------------------------------------


def is_reviewer(user: AbstractBaseUser) -> bool:
    return bool(user.is_authenticated and user.is_active and (
        user.is_staff or user.groups.filter(name=REVIEWERS_GROUP).exists()))  # fmt: skip


def allowed_tenants(user: AbstractBaseUser) -> list[str] | None:
    """The tenants ``user`` may review, or None for every tenant (no restriction rows)."""
    names = list(ReviewerTenant.objects.filter(user=user).values_list("tenant", flat=True))
    return names or None


def visible_items(user: AbstractBaseUser) -> QuerySet[ReviewItem]:
    items = ReviewItem.objects.all()
    tenants = allowed_tenants(user)
    return items if tenants is None else items.filter(tenant__in=tenants)


# --- Enqueue ---------------------------------------------------------------------------------------------


def enqueue_outcome(**kwargs: Any) -> None:
    """Receiver of ``ingest.signals.outcome_stored``: escalations, rejections and audit samples wait for a label."""
    decision = kwargs.get("decision")
    audit_sample = bool(kwargs.get("audit_sample", False))
    if decision not in ("escalate", "reject") and not audit_sample:
        return  # the common case costs nothing
    verdict = kwargs["verdict"]
    reasons = [c.code for c in verdict.failed_checks]
    # ON CONFLICT DO NOTHING on the one-to-one record: a repeated signal never makes a second item.
    ReviewItem.objects.bulk_create(
        [ReviewItem(record_id=kwargs["record_id"], tenant=kwargs["tenant"], pcs_id=kwargs["pcs_id"],
                    shard_id=kwargs["shard_id"], decision=decision, regime=verdict.regime, reasons=reasons,
                    score=kwargs["score"], audit_sample=audit_sample, received_at=kwargs["received_at"])],
        ignore_conflicts=True,
    )  # fmt: skip


# --- Claiming ----------------------------------------------------------------------------------------------


def may_adjudicate(user: AbstractBaseUser) -> bool:
    return bool(user.has_perm("review.adjudicate_reviewitem"))


def _open_stages(user: AbstractBaseUser) -> tuple[str, ...]:
    return (*QUEUED, ReviewItem.Stage.ADJUDICATION) if may_adjudicate(user) else QUEUED


def _my_standing_label(user: AbstractBaseUser) -> Exists:
    return Exists(ReviewLabel.objects.filter(item=OuterRef("pk"), reviewer=user, withdrawn_at__isnull=True))


def _claimable(user: AbstractBaseUser, now: datetime, *, adjudication: bool = False) -> QuerySet[ReviewItem]:
    """Items ``user`` may take now: free (or their own), and never one they labelled or skipped.

    Labels of one item are independent: a reviewer who labelled an item never gets it again for another label,
    nor to adjudicate it. Items waiting for adjudication are offered only to adjudicators, and only in the
    adjudication stream (``adjudication``), so that a shift of first labels is not interrupted by them.
    """
    cutoff = now - timedelta(seconds=claim_seconds())
    skipped = AuditEvent.objects.filter(item=OuterRef("pk"), user=user, action=AuditEvent.Action.SKIP)
    if adjudication:
        stages: tuple[str, ...] = (ReviewItem.Stage.ADJUDICATION,) if may_adjudicate(user) else ()
    else:
        stages = QUEUED
    return (
        visible_items(user)
        .filter(stage__in=stages)
        .filter(Q(claimed_by__isnull=True) | Q(claimed_at__lt=cutoff) | Q(claimed_by=user))
        .exclude(_my_standing_label(user))
        .exclude(Exists(skipped))
    )


def stream_items(user: AbstractBaseUser, stream: Stream) -> QuerySet[ReviewItem]:
    """What is left for ``user`` in ``stream``: the items Next would still give them (the held one included)."""
    return stream.apply(_claimable(user, timezone.now(), adjudication=stream.adjudication))


def held_item(user: AbstractBaseUser) -> ReviewItem | None:
    """The item ``user`` holds an unexpired claim on, if any."""
    cutoff = timezone.now() - timedelta(seconds=claim_seconds())
    return ReviewItem.objects.filter(
        claimed_by=user, claimed_at__gte=cutoff, stage__in=(*QUEUED, ReviewItem.Stage.ADJUDICATION)
    ).first()


def _release_others(user: AbstractBaseUser, keep: int | None) -> None:
    # A reviewer holds one item at a time: taking another gives the previous one back to the queue. SKIP LOCKED:
    # a row locked by someone else is being taken over by them (its claim lapsed), and waiting for it while
    # holding the lock on the new item could deadlock with a reviewer doing the same the other way round.
    held = ReviewItem.objects.filter(claimed_by=user).exclude(pk=keep)
    for item in held.select_for_update(skip_locked=True, of=("self",)):
        item.claimed_by, item.claimed_at = None, None
        item.save(update_fields=["claimed_by", "claimed_at"])
        if item.stage != ReviewItem.Stage.DONE:
            AuditEvent.objects.create(item=item, user=user, action=AuditEvent.Action.RELEASE)


def _take(user: AbstractBaseUser, item: ReviewItem, now: datetime) -> None:
    _release_others(user, keep=item.pk)
    item.claimed_by = user
    item.claimed_at = now
    item.save(update_fields=["claimed_by", "claimed_at"])
    AuditEvent.objects.create(item=item, user=user, action=AuditEvent.Action.CLAIM, detail=item.stage)
    log.info("review_claimed", extra={"event": "review_claimed", "pcs_id": item.pcs_id, "tenant": item.tenant,
                                      "reviewer": user.get_username()})  # fmt: skip


def claim_next(user: AbstractBaseUser, stream: Stream | None = None) -> ReviewItem | None:
    """Give ``user`` the first item of ``stream`` they may take (or the one of it they already hold); None when empty.

    A claim held on an item outside the stream is released: the reviewer has moved on to another view.
    """
    stream = stream or Stream()
    now = timezone.now()
    with transaction.atomic():
        held = held_item(user)
        if held is not None and stream.apply(ReviewItem.objects.filter(pk=held.pk)).exists():
            return held
        # Two reviewers pressing "Next" at once: FOR UPDATE locks the row the first one picks until its
        # transaction commits the claim; SKIP LOCKED makes the second pass over that row and take the next
        # one instead of waiting and then finding it claimed. A claim committed before the second SELECT
        # started is excluded by the WHERE clause (READ COMMITTED takes a new snapshot per statement).
        item = (
            stream.order(stream.apply(_claimable(user, now, adjudication=stream.adjudication)))
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if item is None:
            return None
        _take(user, item, now)
    return item


def claim_item(user: AbstractBaseUser, item_id: int) -> ReviewItem:
    """Give ``user`` one chosen item (from the list or a link) unless someone else holds it or they may not take it."""
    now = timezone.now()
    with transaction.atomic():
        item = _locked_open(user, item_id, now)
        if item.claimed_by_id != user.pk or item.claimed_at is None:
            _take(user, item, now)
        else:
            item.claimed_at = now  # taking one's own item again renews the claim
            item.save(update_fields=["claimed_at"])
    return item


def _locked_open(user: AbstractBaseUser, item_id: int, now: datetime) -> ReviewItem:
    """The item, locked (FOR UPDATE), that ``user`` may label now; a ReviewError says why not.

    FOR UPDATE waits for a concurrent claim or label of the same item to commit; PostgreSQL then re-reads the
    row, so the checks below see the other reviewer's claim or label and refuse, never both succeeding.
    """
    item = visible_items(user).select_for_update(of=("self",)).filter(pk=item_id).first()
    if item is None:
        raise ItemNotFound("no such item")
    refusal = label_refusal(user, item, now)
    if refusal:
        raise ReviewError(refusal)
    return item


def label_refusal(user: AbstractBaseUser, item: ReviewItem, now: datetime | None = None) -> str | None:
    """Why ``user`` may not label ``item`` now (for people), or None when they may."""
    now = now or timezone.now()
    if item.stage == ReviewItem.Stage.DONE:
        return "this item is already labelled"
    if item.stage not in _open_stages(user):
        return "this item waits for an adjudicator: its reviewers disagree"
    cutoff = now - timedelta(seconds=claim_seconds())
    if item.claimed_by_id not in (None, user.pk) and item.claimed_at is not None and item.claimed_at >= cutoff:
        return "this item is not claimed by you: another reviewer holds it; take another with Next"
    if item.labels.filter(reviewer=user, withdrawn_at__isnull=True).exists():
        return "you have labelled this item already; its other labels must come from other reviewers"
    return None


# --- Labelling ---------------------------------------------------------------------------------------------


def clean_tags(tags: Sequence[str]) -> list[str]:
    """Reason codes and free tags as stored: trimmed, lower-case except the codes, at most 12 of 40 characters."""
    from review.streams import REASONS

    codes = {c.lower(): c for c in REASONS}
    out: list[str] = []
    for raw in tags:
        for part in str(raw).replace("\x00", "").split(","):
            tag = " ".join(part.split())[:40]
            tag = codes.get(tag.lower(), tag.lower())
            if tag and tag not in out:
                out.append(tag)
    return out[:12]


def _final(labels: Sequence[ReviewLabel]) -> ReviewLabel | None:
    """The label that speaks for the item: the adjudication, else the first one when all agree; None if disputed."""
    for row in labels:
        if row.adjudication:
            return row
    opinions = [row for row in labels if not row.adjudication]
    if not opinions or len({row.label for row in opinions}) > 1:
        return None
    return opinions[0]


def _settle(item: ReviewItem, before: ReviewLabel | None) -> None:
    """Set the item's stage from its standing labels and keep its calibration label equal to its final label.

    Only the final label feeds the calibration set: the first label while the others agree with it, none while
    they disagree, the adjudicator's once there is one.
    """
    standing = list(
        item.labels.filter(withdrawn_at__isnull=True).select_related("reviewer").order_by("created_at", "id")
    )
    opinions = [row for row in standing if not row.adjudication]
    final = _final(standing)
    if any(row.adjudication for row in standing):
        item.stage, item.disagreement = ReviewItem.Stage.DONE, True
    elif not opinions:
        item.stage, item.disagreement = ReviewItem.Stage.FIRST, False
    elif final is None:
        item.stage, item.disagreement = ReviewItem.Stage.ADJUDICATION, True
    else:
        done = len(opinions) >= (item.labels_needed or 1)
        item.stage, item.disagreement = (ReviewItem.Stage.DONE if done else ReviewItem.Stage.SECOND), False
    if final is None:
        if before is not None:
            calibration.withdraw_label(tenant=item.tenant, pcs_id=item.pcs_id)
    elif before is None or before.pk != final.pk:
        origin = "adjudication" if final.adjudication else "review"
        calibration.record_label(**label_facts(item), label=final.label, labelled_at=final.created_at,
                                 origin=f"{origin}:{final.reviewer.get_username()}")  # fmt: skip


def labels_per_item() -> int:
    return max(1, int(getattr(settings, "FLK_REVIEW_LABELS_PER_ITEM", 1)))


def label_item(
    user: AbstractBaseUser, item_id: int, label: str, note: str = "", tags: Sequence[str] = ()
) -> ReviewLabel:
    """Store ``user``'s label of an item they hold or may take; the item's final label goes to calibration.

    An item nobody holds is claimed and labelled at once (from its page). The first label draws how many
    independent labels the item needs: FLK_REVIEW_LABELS_PER_ITEM, or two when it is picked for a blind second
    opinion (FLK_REVIEW_SECOND_OPINION_RATE). An item waiting for adjudication takes an adjudicator's final label.
    """
    if label not in ReviewLabel.Value.values:
        raise ReviewError(f"label must be one of {', '.join(ReviewLabel.Value.values)}")
    now = timezone.now()
    with transaction.atomic():
        item = _locked_open(user, item_id, now)
        held_since = item.claimed_at if item.claimed_by_id == user.pk else None
        standing = list(item.labels.filter(withdrawn_at__isnull=True).select_related("reviewer"))
        before = _final(standing)
        adjudication = item.stage == ReviewItem.Stage.ADJUDICATION
        second = bool(standing) and not adjudication
        if not standing and item.labels_needed is None:
            needed = labels_per_item()
            if needed < 2 and random.random() < second_opinion_rate():  # sampling, not a secret
                needed = 2
            item.labels_needed = needed
        try:
            with transaction.atomic():
                row = ReviewLabel.objects.create(
                    item=item, reviewer=user, label=label, note=note.replace("\x00", "")[:2000], second_opinion=second,
                    adjudication=adjudication, tags=clean_tags(tags),
                    seconds=(now - held_since).total_seconds() if held_since else None,
                )  # fmt: skip
        except IntegrityError as exc:  # a standing label of this reviewer, or this round, already exists
            raise ReviewError("this item is already labelled") from exc
        _settle(item, before)
        item.claimed_by = None
        item.claimed_at = None
        item.save(update_fields=["stage", "disagreement", "labels_needed", "claimed_by", "claimed_at"])
        kind = " (adjudication)" if adjudication else " (second opinion)" if second else ""
        AuditEvent.objects.create(item=item, user=user, action=AuditEvent.Action.LABEL, detail=f"{label}{kind}")
    log.info("review_labelled", extra={"event": "review_labelled", "pcs_id": item.pcs_id, "tenant": item.tenant,
                                       "label": label, "second_opinion": second,
                                       "adjudication": adjudication})  # fmt: skip
    return row


def label_facts(item: ReviewItem) -> dict[str, Any]:
    """What calibration keeps with a label: the signals to rescore it, and what happened to the PCS at ingest."""
    record = item.record
    conformal = (record.response or {}).get("conformal") or {}
    p_value, delta = conformal.get("p_value"), conformal.get("delta")
    return {
        "tenant": item.tenant,
        "pcs_id": item.pcs_id,
        "provenance": item.provenance,
        "signals": {"D_hat": record.d_hat, "coh_star": record.coh_star, "r": record.r},
        "inclusion_probability": record.audit_probability if item.audit_sample and record.audit_probability else None,
        "decision": record.decision,
        "p_value": p_value,
        "flagged": None if p_value is None or delta is None else p_value <= delta,
        "snapshot_n": conformal.get("n"),
        "delta": delta,
        "received_at": record.received_at,
    }


UNDO_DEPTH = 5


def undoable_labels(user: AbstractBaseUser, limit: int = UNDO_DEPTH) -> list[ReviewLabel]:
    """``user``'s latest standing labels still inside the undo window, newest first (at most ``limit``)."""
    since = timezone.now() - timedelta(seconds=undo_seconds())
    return list(
        ReviewLabel.objects.filter(reviewer=user, withdrawn_at__isnull=True, created_at__gte=since)
        .select_related("item")
        .order_by("-created_at", "-id")[:limit]
    )


def undoable_label(user: AbstractBaseUser) -> ReviewLabel | None:
    """``user``'s latest standing label still inside the undo window, if any."""
    rows = undoable_labels(user, limit=1)
    return rows[0] if rows else None


def undo_last(user: AbstractBaseUser, label_id: int | None = None) -> ReviewItem:
    """Withdraw one of ``user``'s recent labels (the latest by default) and give the item back to them.

    Only within FLK_REVIEW_UNDO_SECONDS, and only while no later label stands on the item: a later independent
    label, or an adjudication, was given against this one.
    """
    with transaction.atomic():
        rows = undoable_labels(user)
        row = rows[0] if rows and label_id is None else next((r for r in rows if r.pk == label_id), None)
        if row is None:
            raise ReviewError("nothing to undo: no such label of yours in the last few minutes")
        item = ReviewItem.objects.select_for_update().get(pk=row.item_id)
        row = ReviewLabel.objects.select_for_update().get(pk=row.pk)
        if row.withdrawn_at is not None:
            raise ReviewError("this label was already undone")
        standing = list(item.labels.filter(withdrawn_at__isnull=True).select_related("reviewer"))
        if any((r.created_at, r.pk) > (row.created_at, row.pk) for r in standing):
            raise ReviewError("another label was given on this item since; yours can no longer be undone")
        cutoff = timezone.now() - timedelta(seconds=claim_seconds())
        if item.claimed_by_id not in (None, user.pk) and item.claimed_at and item.claimed_at >= cutoff:
            raise ReviewError("another reviewer is labelling this item now; it can no longer be undone")
        before = _final(standing)
        row.withdrawn_at = timezone.now()
        row.save(update_fields=["withdrawn_at"])
        _settle(item, before)
        # The reviewer gets the item back to label it again.
        _release_others(user, keep=item.pk)
        item.claimed_by, item.claimed_at = user, timezone.now()
        item.save(update_fields=["stage", "disagreement", "claimed_by", "claimed_at"])
        AuditEvent.objects.create(item=item, user=user, action=AuditEvent.Action.UNDO, detail=row.label)
    log.info("review_undone", extra={"event": "review_undone", "pcs_id": item.pcs_id, "tenant": item.tenant})
    return item


def skip_item(user: AbstractBaseUser, item_id: int) -> None:
    """Release ``user``'s claim; the item goes back to the queue for others (not offered to them again)."""
    with transaction.atomic():
        item = _locked_open(user, item_id, timezone.now())
        if item.claimed_by_id == user.pk:
            item.claimed_by, item.claimed_at = None, None
            item.save(update_fields=["claimed_by", "claimed_at"])
        AuditEvent.objects.create(item=item, user=user, action=AuditEvent.Action.SKIP)


# --- Expiring audit samples ----------------------------------------------------------------------------------


def expire_audit_items(user: AbstractBaseUser, item_ids: Sequence[int], reason: str = "") -> list[ReviewItem]:
    """Give up the unlabelled audit samples among ``item_ids`` (an admin's explicit decision); returns them.

    Each leaves the queue (done, without a label), is recorded as expired in calibration (so the dedup-TTL purge
    may remove its stored outcome and label completion counts it as expired) and gets an audit-trail event.
    Items that are not audit samples or already have a first label are left alone.
    """
    reason = reason or f"expired by {user.get_username()}"
    with transaction.atomic():
        # FOR UPDATE: a reviewer labelling one of these items at the same moment either commits first (the item
        # is then labelled and left alone here) or waits and then finds the item done.
        items = list(
            ReviewItem.objects.select_for_update()
            .filter(pk__in=item_ids, audit_sample=True, stage=ReviewItem.Stage.FIRST)
            .order_by("pk")
        )
        if not items:
            return []
        calibration.expire_audits([(i.tenant, i.pcs_id) for i in items], reason=reason,
                                  expired_by=user.get_username())  # fmt: skip
        ReviewItem.objects.filter(pk__in=[i.pk for i in items]).update(
            stage=ReviewItem.Stage.DONE, claimed_by=None, claimed_at=None
        )
        for item in items:
            AuditEvent.objects.create(item=item, user=user, action=AuditEvent.Action.EXPIRE, detail=reason[:200])
    log.warning("review_audit_expired", extra={"event": "review_audit_expired", "count": len(items),
                "reviewer": user.get_username(), "tenants": sorted({i.tenant for i in items})})  # fmt: skip
    return items


# --- Figures ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantStats:
    tenant: str
    depth: int
    total_24h: int
    escalate_rate: float | None
    reject_rate: float | None
    kappa: float | None
    pairs: int
    disagreements: int
    calibration_n: int | None
    threshold: float | None
    drift: Any
    audit: calibration.AuditCompletion | None = None

    @property
    def oldest_audit_wait(self) -> str:
        """The age of the oldest audit sample waiting for a label, for people ("3 d 4 h", "25 min"), or ""."""
        seconds = self.audit.oldest_waiting_seconds if self.audit else None
        if seconds is None:
            return ""
        minutes = int(seconds // 60)
        days, hours = divmod(minutes // 60, 24)
        if days:
            return f"{days} d {hours} h"
        return f"{hours} h {minutes % 60} min" if hours else f"{minutes} min"


def opinion_pairs(items: QuerySet[ReviewItem]) -> dict[str, list[tuple[str, str]]]:
    """Per tenant, the (earlier, later) pairs of independent standing labels of each item labelled more than once."""
    pairs: dict[str, list[tuple[str, str]]] = {}
    for tenant, rows in _independent_labels(items):
        for i, (_, first) in enumerate(rows):
            pairs.setdefault(tenant, []).extend((first, later) for _, later in rows[i + 1 :])
    return pairs


def reviewer_pairs(items: QuerySet[ReviewItem]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Per pair of reviewers (names in order), their labels of the items both labelled, in that name order."""
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for _, rows in _independent_labels(items):
        ordered = sorted(rows)
        for i, (a, label_a) in enumerate(ordered):
            for b, label_b in ordered[i + 1 :]:
                pairs.setdefault((a, b), []).append((label_a, label_b))
    return pairs


def _independent_labels(items: QuerySet[ReviewItem]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(tenant, [(reviewer, label), ...] in label order) of each item with two or more independent labels."""
    rows = (
        ReviewLabel.objects.filter(item__in=items, withdrawn_at__isnull=True, adjudication=False)
        .order_by("item_id", "created_at", "id")
        .values_list("item_id", "item__tenant", "reviewer__username", "label")
    )
    by_item: dict[int, tuple[str, list[tuple[str, str]]]] = {}
    for item_id, tenant, reviewer, label in rows:
        by_item.setdefault(item_id, (tenant, []))[1].append((reviewer, label))
    return [(tenant, labels) for tenant, labels in by_item.values() if len(labels) > 1]


@dataclass(frozen=True)
class ReviewerFigures:
    reviewer: str
    labelled_today: int
    labels: int
    median_seconds: float | None


def reviewer_figures(items: QuerySet[ReviewItem], today: datetime) -> list[ReviewerFigures]:
    """Per reviewer over the last 30 days: labels today, labels, and the median time from claim to label.

    Only labels of items the reviewer had claimed are timed (a label given straight from an item's page is not).
    """
    from statistics import median

    counts: dict[str, list[int]] = {}
    seconds: dict[str, list[float]] = {}
    since = today - timedelta(days=30)
    rows = ReviewLabel.objects.filter(item__in=items, withdrawn_at__isnull=True, created_at__gte=since).values_list(
        "reviewer__username", "created_at", "seconds"
    )
    for name, created, spent in rows.iterator(chunk_size=2000):
        today_total = counts.setdefault(name, [0, 0])
        today_total[0] += created >= today
        today_total[1] += 1
        if spent is not None:
            seconds.setdefault(name, []).append(spent)
    return sorted(
        (ReviewerFigures(name, n_today, n, median(seconds[name]) if name in seconds else None)
         for name, (n_today, n) in counts.items()),
        key=lambda r: (-r.labelled_today, -r.labels, r.reviewer),
    )  # fmt: skip


def stats(user: AbstractBaseUser) -> dict[str, Any]:
    from calibration.models import DriftReport
    from ingest.models import PcsRecord
    from review.agreement import cohens_kappa

    now = timezone.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    items = visible_items(user)
    tenants_scope = allowed_tenants(user)
    depth = dict(
        items.filter(stage__in=QUEUED).values_list("tenant").annotate(n=Count("id")).values_list("tenant", "n")
    )
    records = PcsRecord.objects.filter(received_at__gte=now - timedelta(hours=24))
    if tenants_scope is not None:
        records = records.filter(tenant__name__in=tenants_scope)
    traffic: dict[str, dict[str, int]] = {}
    for tenant, decision, n in records.values_list("tenant__name", "decision").annotate(n=Count("id")):
        traffic.setdefault(tenant, {})[decision] = n
    pairs = opinion_pairs(items)
    disagreements = dict(
        items.filter(disagreement=True).values_list("tenant").annotate(n=Count("id")).values_list("tenant", "n")
    )
    labelled_today = ReviewLabel.objects.filter(item__in=items, withdrawn_at__isnull=True, created_at__gte=today)
    per_reviewer = reviewer_figures(items, today)
    by_pair = [
        {"a": a, "b": b, "kappa": cohens_kappa(labels), "pairs": len(labels),
         "agree": sum(1 for x, y in labels if x == y)}
        for (a, b), labels in sorted(reviewer_pairs(items).items())
    ]  # fmt: skip
    completion = calibration.audit_completion()
    if tenants_scope is not None:
        completion = {name: row for name, row in completion.items() if name in tenants_scope}
    rows = []
    for tenant in sorted(set(depth) | set(traffic) | set(pairs) | set(completion)):
        counts = traffic.get(tenant, {})
        total = sum(counts.values())
        snap = calibration.current_snapshot(tenant)
        rows.append(TenantStats(
            tenant=tenant, depth=depth.get(tenant, 0), total_24h=total,
            escalate_rate=counts.get("escalate", 0) / total if total else None,
            reject_rate=counts.get("reject", 0) / total if total else None,
            kappa=cohens_kappa(pairs.get(tenant, [])), pairs=len(pairs.get(tenant, [])),
            disagreements=disagreements.get(tenant, 0),
            calibration_n=snap.n if snap else None,
            threshold=snap.threshold if snap and snap.threshold != float("inf") else None,
            drift=DriftReport.objects.filter(tenant=tenant).first(), audit=completion.get(tenant),
        ))  # fmt: skip
    return {
        "queue_depth": sum(depth.values()),
        "labelled_today": labelled_today.count(),
        "per_reviewer": per_reviewer,
        "reviewer_pairs": by_pair,
        "adjudication_waiting": items.filter(stage=ReviewItem.Stage.ADJUDICATION).count(),
        "tenants": rows,
    }
