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


def _claimable(user: AbstractBaseUser, now: datetime) -> QuerySet[ReviewItem]:
    cutoff = now - timedelta(seconds=claim_seconds())
    my_first_label = ReviewLabel.objects.filter(
        item=OuterRef("pk"), reviewer=user, withdrawn_at__isnull=True, second_opinion=False
    )
    skipped = AuditEvent.objects.filter(item=OuterRef("pk"), user=user, action=AuditEvent.Action.SKIP)
    return (
        visible_items(user)
        .filter(stage__in=QUEUED)
        .filter(Q(claimed_by__isnull=True) | Q(claimed_at__lt=cutoff))
        # A second opinion is blind and by someone else: never the reviewer who gave the first label.
        .exclude(Q(stage=ReviewItem.Stage.SECOND) & Exists(my_first_label))
        .exclude(Exists(skipped))
    )


def held_item(user: AbstractBaseUser) -> ReviewItem | None:
    """The item ``user`` holds an unexpired claim on, if any."""
    cutoff = timezone.now() - timedelta(seconds=claim_seconds())
    return ReviewItem.objects.filter(claimed_by=user, claimed_at__gte=cutoff, stage__in=QUEUED).first()


def claim_next(user: AbstractBaseUser) -> ReviewItem | None:
    """Give ``user`` the oldest unclaimed item they may see (or the one they already hold); None when empty."""
    now = timezone.now()
    with transaction.atomic():
        held = held_item(user)
        if held is not None:
            return held
        # Two reviewers pressing "Next" at once: FOR UPDATE locks the row the first one picks until its
        # transaction commits the claim; SKIP LOCKED makes the second pass over that row and take the next
        # one instead of waiting and then finding it claimed. A claim committed before the second SELECT
        # started is excluded by the WHERE clause (READ COMMITTED takes a new snapshot per statement).
        item = (
            _claimable(user, now)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("received_at", "id")
            .first()
        )
        if item is None:
            return None
        item.claimed_by = user
        item.claimed_at = now
        item.save(update_fields=["claimed_by", "claimed_at"])
        AuditEvent.objects.create(item=item, user=user, action=AuditEvent.Action.CLAIM, detail=item.stage)
    log.info("review_claimed", extra={"event": "review_claimed", "pcs_id": item.pcs_id, "tenant": item.tenant,
                                      "reviewer": user.get_username()})  # fmt: skip
    return item


def _locked_claim(user: AbstractBaseUser, item_id: int) -> ReviewItem:
    item = visible_items(user).select_for_update().filter(pk=item_id).first()
    if item is None:
        raise ItemNotFound("no such item")
    if item.stage not in QUEUED:
        raise ReviewError("this item is already labelled")
    if item.claimed_by_id != user.pk:
        raise ReviewError("this item is not claimed by you; take it with Next")
    return item


# --- Labelling ---------------------------------------------------------------------------------------------


def label_item(user: AbstractBaseUser, item_id: int, label: str, note: str = "") -> ReviewLabel:
    """Store ``user``'s label of a claimed item; a first label goes to the tenant's calibration set."""
    if label not in ReviewLabel.Value.values:
        raise ReviewError(f"label must be one of {', '.join(ReviewLabel.Value.values)}")
    with transaction.atomic():
        item = _locked_claim(user, item_id)
        second = item.stage == ReviewItem.Stage.SECOND
        try:
            with transaction.atomic():
                row = ReviewLabel.objects.create(item=item, reviewer=user, label=label, note=note.replace("\x00", "")[:2000],
                                                 second_opinion=second)  # fmt: skip
        except IntegrityError as exc:  # a standing label for this round already exists
            raise ReviewError("this item is already labelled") from exc
        if second:
            first = item.labels.filter(second_opinion=False, withdrawn_at__isnull=True).first()
            item.disagreement = first is not None and first.label != label
            item.stage = ReviewItem.Stage.DONE
        else:
            calibration.record_label(**label_facts(item), label=label, labelled_at=row.created_at,
                                     origin=f"review:{user.get_username()}")  # fmt: skip
            pick = random.random() < second_opinion_rate()  # sampling, not a secret
            item.stage = ReviewItem.Stage.SECOND if pick else ReviewItem.Stage.DONE
        item.claimed_by = None
        item.claimed_at = None
        item.save(update_fields=["stage", "disagreement", "claimed_by", "claimed_at"])
        AuditEvent.objects.create(item=item, user=user, action=AuditEvent.Action.LABEL,
                                  detail=f"{label}{' (second opinion)' if second else ''}")  # fmt: skip
    log.info("review_labelled", extra={"event": "review_labelled", "pcs_id": item.pcs_id, "tenant": item.tenant,
                                       "label": label, "second_opinion": second})  # fmt: skip
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


def undoable_label(user: AbstractBaseUser) -> ReviewLabel | None:
    """``user``'s latest standing label still inside the undo window, if any."""
    since = timezone.now() - timedelta(seconds=undo_seconds())
    return (
        ReviewLabel.objects.filter(reviewer=user, withdrawn_at__isnull=True, created_at__gte=since)
        .select_related("item")
        .order_by("-created_at", "-id")
        .first()
    )


def undo_last(user: AbstractBaseUser) -> ReviewItem:
    """Withdraw ``user``'s latest label (within FLK_REVIEW_UNDO_SECONDS) and give the item back to them."""
    with transaction.atomic():
        row = undoable_label(user)
        if row is None:
            raise ReviewError("nothing to undo: no label of yours in the last few minutes")
        item = ReviewItem.objects.select_for_update().get(pk=row.item_id)
        row = ReviewLabel.objects.select_for_update().get(pk=row.pk)
        if row.withdrawn_at is not None:
            raise ReviewError("this label was already undone")
        if not row.second_opinion and item.labels.filter(second_opinion=True, withdrawn_at__isnull=True).exists():
            raise ReviewError("a second opinion was already given on this label; it can no longer be undone")
        row.withdrawn_at = timezone.now()
        row.save(update_fields=["withdrawn_at"])
        if row.second_opinion:
            item.stage, item.disagreement = ReviewItem.Stage.SECOND, False
        else:
            item.stage = ReviewItem.Stage.FIRST
            calibration.withdraw_label(tenant=item.tenant, pcs_id=item.pcs_id)
        # The reviewer gets the item back to label it again.
        item.claimed_by, item.claimed_at = user, timezone.now()
        item.save(update_fields=["stage", "disagreement", "claimed_by", "claimed_at"])
        AuditEvent.objects.create(item=item, user=user, action=AuditEvent.Action.UNDO, detail=row.label)
    log.info("review_undone", extra={"event": "review_undone", "pcs_id": item.pcs_id, "tenant": item.tenant})
    return item


def skip_item(user: AbstractBaseUser, item_id: int) -> None:
    """Release ``user``'s claim; the item goes back to the queue for others (not offered to them again)."""
    with transaction.atomic():
        item = _locked_claim(user, item_id)
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
    """Per tenant, the (first, second) standing labels of items with a second opinion."""
    labels = ReviewLabel.objects.filter(item__in=items, withdrawn_at__isnull=True).values_list(
        "item_id", "item__tenant", "second_opinion", "label"
    )
    by_item: dict[int, dict[bool, str]] = {}
    tenant_of: dict[int, str] = {}
    for item_id, tenant, second, label in labels:
        by_item.setdefault(item_id, {})[second] = label
        tenant_of[item_id] = tenant
    pairs: dict[str, list[tuple[str, str]]] = {}
    for item_id, rounds in by_item.items():
        if False in rounds and True in rounds:
            pairs.setdefault(tenant_of[item_id], []).append((rounds[False], rounds[True]))
    return pairs


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
    per_reviewer = list(labelled_today.values("reviewer__username").annotate(n=Count("id")).order_by("-n"))
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
        "tenants": rows,
    }
