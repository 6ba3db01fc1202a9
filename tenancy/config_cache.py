"""Per-process copies of tenants, keys and the active VerifyParams, dropped when a change is announced.

The mechanism is ``calibration.generations``; this module names the generation these copies follow and
the per-request pin that reads it together with the calibration snapshot generation in one round trip.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from calibration import services as calibration_services
from calibration.generations import Generation, ProcessMemo, pinned_together

GENERATION_KEY = "flk:config-generation"
config_generation = Generation(GENERATION_KEY)

announce_change = config_generation.announce
current_generation = config_generation.current
generation_pinned = config_generation.pinned

__all__ = ["GENERATION_KEY", "REQUEST_GENERATION_KEYS", "ProcessMemo", "announce_change", "announce_changes_of", "current_generation",
           "generation_pinned", "request_generations"]  # fmt: skip


# What the submit path pins per request, in this order.
REQUEST_GENERATIONS = (config_generation, calibration_services.snapshot_generation)
REQUEST_GENERATION_KEYS = tuple(g.key for g in REQUEST_GENERATIONS)


@contextmanager
def request_generations(shared: Sequence[object] | None = None) -> Iterator[None]:
    """Pin the config and calibration generations for one request in one round trip.

    ``shared`` holds their announced values when the caller already fetched them (the rate-limit script
    reads them in its own round trip); otherwise they are read with a single MGET. The request path
    consults tenants, keys, VerifyParams and the calibration snapshot; reading each generation separately
    would cost three round trips per submission.
    """
    with pinned_together(REQUEST_GENERATIONS, shared):
        yield


def _announce_after_commit(**_kwargs: object) -> None:
    transaction.on_commit(announce_change)


def announce_changes_of(*models: type) -> None:
    """Announce every save and delete of these models once its transaction commits (bulk ones: AnnouncingQuerySet)."""
    for model in models:
        uid = model._meta.label
        post_save.connect(_announce_after_commit, sender=model, dispatch_uid=f"announce-save-{uid}")
        post_delete.connect(_announce_after_commit, sender=model, dispatch_uid=f"announce-delete-{uid}")
