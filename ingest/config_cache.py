"""Per-process copies of tenants, keys and the active VerifyParams, dropped when a change is announced.

The submit path must not query tenants, keys and parameters on every request, yet an admin's change must
take effect on the next submission, in every worker and replica, without a restart. Saving any of those
rows announces a new *generation* in the shared cache (Redis in production); each request compares one
small value with the generation its copies were built under. If the shared cache cannot be read the
copies are still dropped after ``FLK_CONFIG_MAX_AGE_SECONDS``, which bounds staleness when an
announcement is lost.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger("flk.config")
GENERATION_KEY = "flk:config-generation"
T = TypeVar("T")


def announce_change() -> None:
    """Tell every process that tenants, keys or VerifyParams changed (call after the commit)."""
    try:
        cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
    except Exception:  # the shared cache is down: copies expire by age instead
        log.warning("config_generation_announce_failed", exc_info=True)
    _local_generation[0] += 1


_local_generation = [0]


_pinned = threading.local()


@contextmanager
def generation_pinned(shared: object = None) -> Iterator[None]:
    """Read the generation once for a bounded block of work in this thread (a request, a WAL replay batch).

    The block then costs one shared-cache round trip instead of several; a change announced meanwhile
    takes effect at the next block, like a lost announcement would by age. ``shared`` is the value of
    ``GENERATION_KEY`` when the caller already read it together with other keys.
    """
    _pinned.value = current_generation() if shared is None else _with_local(shared)
    try:
        yield
    finally:
        _pinned.value = None


@contextmanager
def request_generations() -> Iterator[None]:
    """Pin the config and calibration generations for one request with a single MGET.

    The request path consults tenants, keys, VerifyParams and the calibration snapshot; reading each
    generation separately cost three round trips (and three client objects) per submission.
    """
    from calibration import services as calibration_services

    keys = [GENERATION_KEY, calibration_services.GENERATION_KEY]
    try:
        found = cache.get_many(keys)
        # str() gives the same token a single get() would ("None" for a key never announced).
        config, snapshot = (str(found.get(key)) for key in keys)
    except Exception:  # the shared cache is down: copies expire by age
        config = snapshot = "unavailable"
    with generation_pinned(config), calibration_services.generation_pinned(snapshot):
        yield


def _with_local(shared: object) -> str:
    return f"{shared}:{_local_generation[0]}"


def current_generation() -> str:
    pinned = getattr(_pinned, "value", None)
    if pinned is not None:
        return pinned
    try:
        shared = cache.get(GENERATION_KEY)
    except Exception:
        shared = "unavailable"
    return _with_local(shared)


class ProcessMemo(Generic[T]):
    """A value per key, rebuilt by ``loader`` when the generation changes or the copy is too old."""

    def __init__(self, loader: Callable[[str], T]):
        self._loader = loader
        self._lock = threading.Lock()
        self._values: dict[str, tuple[T, str, float]] = {}

    def get(self, key: str, generation: str) -> T:
        entry = self._values.get(key)
        now = time.monotonic()
        if entry is not None and entry[1] == generation and now - entry[2] < settings.FLK_CONFIG_MAX_AGE_SECONDS:
            return entry[0]
        value = self._loader(key)
        if value is not None:  # misses (unknown tenants) are not kept: the memo stays bounded by real rows
            with self._lock:
                self._values[key] = (value, generation, now)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
