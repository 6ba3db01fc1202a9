"""The business operations on VerifyParams versions: create a draft, activate one (rollback is the same).

A version is never edited in place: a change is a new draft row with its author, time and reason, and only
an explicit activation puts it into service. Every write goes through ``Model.save()`` so the post_save hook
(policy.signals) announces the change and every process picks up the new version on its next submission.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from policy.models import VerifyParams
from policy.params_rules import PARAM_FIELDS

log = logging.getLogger("flk.params")


class ActivationRefused(Exception):
    """The version cannot be activated (it breaks an invariant, e.g. a row written before the rules)."""


class IdenticalVersion(ValidationError):
    """The values are exactly those of an existing version: a second copy would only blur the history."""

    def __init__(self, existing: VerifyParams):
        self.existing = existing
        state = "in service" if existing.is_active else "a draft" if existing.activated_at is None else "not active"
        hint = "" if existing.is_active else f"; to use it, activate v{existing.version}"
        super().__init__(
            f"these values are exactly those of v{existing.version} ({state}): no new version was created{hint}"
        )


def identical_version(values: Mapping[str, float]) -> VerifyParams | None:
    """The oldest version whose parameters all equal ``values``, if any (the active one first)."""
    same = VerifyParams.objects.filter(**{name: values[name] for name in PARAM_FIELDS})
    return same.order_by("-is_active", "version").first()


def create_draft(values: Mapping[str, float], reason: str, user: object | None) -> VerifyParams:
    """Store ``values`` as a new inactive version numbered after the highest.

    Raises ValidationError if they break a rule, IdenticalVersion if a version with exactly these values exists.
    """
    draft = VerifyParams(**{name: values[name] for name in PARAM_FIELDS}, reason=(reason or "").strip())
    draft.version = 1  # placeholder for full_clean; the real number is taken when it is stored
    draft.full_clean(exclude=["version", "is_active"])
    existing = identical_version(values)
    if existing is not None:
        raise IdenticalVersion(existing)
    return store_draft(draft, user)


class DeletionRefused(Exception):
    """Only a draft that was never in service may be deleted: the others are the audit history."""


def deletable(version: VerifyParams) -> bool:
    """A draft never activated: no PCS was decided under it, so deleting it loses no history."""
    return not version.is_active and version.activated_at is None


def delete_draft(pk: int) -> None:
    """Delete draft ``pk`` (and its what-if reports); refuse a version that is or was in service.

    The row is locked under the condition: an activation of it holds every row's lock (``activate_version``),
    and PostgreSQL re-checks the condition once that commits, so a version activated meanwhile is never deleted.
    """
    with transaction.atomic():
        draft = (
            VerifyParams.objects.select_for_update().filter(pk=pk, is_active=False, activated_at__isnull=True).first()
        )
        if draft is None:
            raise DeletionRefused("only a draft that was never active can be deleted; this version is history")
        draft.delete()
    log.info("verify_params_draft_deleted", extra={"event": "verify_params_draft_deleted", "pk": pk})


def store_draft(draft: VerifyParams, user: object | None) -> VerifyParams:
    """Insert ``draft`` (already validated) as a new inactive version, whatever row it was loaded from."""
    draft.pk = None
    draft._state.adding = True
    draft.is_active = False
    draft.activated_by = None
    draft.activated_at = None
    draft.created_by = user if getattr(user, "pk", None) else None
    # Two admins saving at once both read the same maximum; the unique version makes the loser retry.
    for _attempt in range(5):
        try:
            with transaction.atomic():
                draft.version = (VerifyParams.objects.aggregate(top=Max("version"))["top"] or 0) + 1
                draft.save(force_insert=True)
            break
        except IntegrityError:
            draft.pk = None
            continue
    else:  # pragma: no cover - needs five concurrent saves in a row
        raise ValidationError("could not number the new version; try again")
    log.info("verify_params_draft_created", extra={"event": "verify_params_draft_created", "version": draft.version})
    return draft


def activate_version(pk: int, user: object | None) -> VerifyParams:
    """Make version ``pk`` the one in service, recording who and when; activating an older one is the rollback.

    One transaction that locks every version row, in primary-key order (no deadlock between two
    activations). Locking only "the active row and the target" is not enough: a second activation waiting on
    the old active row would, once the first commits, find that row no longer active and miss the newly
    active one. With every row locked, the waiter re-reads each row's committed state. Rows inserted since
    (new drafts) are inactive; should one be created and activated in that instant, the partial unique index
    refuses the waiter's commit rather than leave two active. The old row is switched off before the new one is switched
    on because the partial unique index on ``is_active`` is checked per statement.
    """
    with transaction.atomic():
        rows = {row.pk: row for row in VerifyParams.objects.select_for_update().order_by("pk")}
        target = rows.get(pk)
        if target is None:
            raise VerifyParams.DoesNotExist(pk)
        try:
            target.clean()
        except ValidationError as exc:
            raise ActivationRefused(f"v{target.version} breaks an invariant: {exc.messages}") from exc
        if target.is_active:
            return target
        for row in rows.values():
            if row.is_active:
                row.is_active = False
                row.save(update_fields=["is_active"])
        target.is_active = True
        target.activated_by = user if getattr(user, "pk", None) else None
        target.activated_at = timezone.now()
        target.save(update_fields=["is_active", "activated_by", "activated_at"])
        # Calibration scores follow the active formula: every snapshot is rebuilt under the new version once it
        # is committed and announced (until then the request path compares under the snapshot's own formula).
        transaction.on_commit(recalibrate_everything, robust=True)
    log.info("verify_params_activated", extra={"event": "verify_params_activated", "version": target.version})
    return target


def recalibrate_everything() -> None:
    """Enqueue the rebuild of every tenant's snapshot and the global set under the active parameters."""
    from calibration.tasks import recalibrate

    try:
        recalibrate.apply_async()
    except Exception:  # no broker: the scheduled recalibration picks the change up
        log.warning("recalibration_enqueue_failed", extra={"event": "recalibration_enqueue_failed"}, exc_info=True)


def active_version() -> VerifyParams | None:
    return VerifyParams.objects.filter(is_active=True).first()
