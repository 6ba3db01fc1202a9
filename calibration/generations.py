"""Per-process copies of database rows, dropped when a change is *announced* through the shared cache.

The request path must not query tenants, keys, VerifyParams or calibration snapshots on every request, yet
a change must take effect on the next request in every worker and replica without a restart. Whoever
changes such rows announces a new generation (a random value under a cache key, Redis in production)
after the commit; a copy is used only while the generation it was built under is still current. If the
shared cache cannot be read, copies are still dropped after ``FLK_CONFIG_MAX_AGE_SECONDS``, which bounds
staleness when an announcement is lost.

Without Redis (the embedded default of ``make run``) the announced values are small files under
``FLK_VAR_DIR/generations/``, which every process of the machine reads: an API key made by
``manage.py create_api_key`` or a snapshot stored by a beat task takes effect on the server's next request.

This lives in the lowest app so that both calibration (snapshots) and ingest (tenants, keys, params) use
the one mechanism; it knows nothing of either.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Generic, TypeVar

import redis
from django.conf import settings

from flk_site import shared_redis

log = logging.getLogger("flk.generations")
T = TypeVar("T")
UNAVAILABLE = "unavailable"  # the announced value could not be read: copies expire by age meanwhile
NOT_READ = object()


class Generation:
    """The announced generation under one cache key, plus this process's own count of announcements."""

    def __init__(self, key: str):
        self.key = key
        self._local = 0  # also moves without a shared cache, so this process never serves its own stale copy
        self._pinned = threading.local()

    def announce(self) -> None:
        """Tell every process that the rows behind this generation changed (call after the commit)."""
        client = shared_redis.client()
        value = uuid.uuid4().hex
        try:
            if client is not None:
                client.set(self.key, value)
            else:
                _write_local(self.key, value)
        except (redis.RedisError, OSError):  # the shared cache is down: copies expire by age instead
            log.warning("generation_announce_failed", extra={"event": "generation_announce_failed", "key": self.key})
        self._local += 1

    def token(self, shared: object) -> str:
        """``shared`` is the announced value as Redis returned it, None if never announced, or a marker."""
        if isinstance(shared, bytes):
            shared = shared.decode("ascii", "replace")
        return f"{shared}:{self._local}"

    def shared_value(self) -> object:
        """The announced value, read now: None if never announced, a marker when it cannot be read."""
        client = shared_redis.client()
        if client is None:
            return _read_local(self.key)
        try:
            return client.get(self.key)
        except redis.RedisError:
            return UNAVAILABLE

    def current(self) -> str:
        """The generation token: the one pinned for this thread's block of work, else read now."""
        pinned = getattr(self._pinned, "value", None)
        if pinned is not None:
            return pinned
        return self.token(self.shared_value())

    @contextmanager
    def pinned(self, shared: object = NOT_READ) -> Iterator[None]:
        """Read the generation once for a bounded block of work in this thread (a request, a replay batch).

        A change announced meanwhile takes effect at the next block, like a lost announcement would by age.
        ``shared`` is the announced value when the caller already read it together with other keys
        (``NOT_READ``: read it now).
        """
        self._pinned.value = self.current() if shared is NOT_READ else self.token(shared)
        try:
            yield
        finally:
            self._pinned.value = None


def read_together(generations: Sequence[Generation]) -> list[object]:
    """The announced values of several generations with a single MGET."""
    client = shared_redis.client()
    if client is None:
        return unread_values(generations)
    try:
        return client.mget([g.key for g in generations])
    except redis.RedisError:  # the shared cache is down: copies expire by age
        return [UNAVAILABLE] * len(generations)


def unread_values(generations: Sequence[Generation]) -> list[object]:
    """The announced values when Redis was not read: without Redis configured, those of the machine's files;
    with a Redis that is down, a marker (copies expire by age; asking again would only wait again)."""
    if shared_redis.client() is None:
        return [_read_local(g.key) for g in generations]
    return [UNAVAILABLE] * len(generations)


def _local_path(key: str) -> Path:
    return Path(settings.VAR_DIR) / "generations" / key.replace(":", "_")


def _write_local(key: str, value: str) -> None:
    """Replace the key's file in one step (write aside, then rename), so a reader never sees half a value."""
    path = _local_path(key)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    aside.write_text(value)
    os.replace(aside, path)


def _read_local(key: str) -> object:
    try:
        return _local_path(key).read_text()
    except FileNotFoundError:
        return None  # never announced
    except OSError:
        return UNAVAILABLE


@contextmanager
def pinned_together(generations: Sequence[Generation], shared: Sequence[object] | None = None) -> Iterator[None]:
    """Pin several generations at once: with values already read (``shared``, in the same order, e.g.
    fetched in another round trip that had to happen anyway), or else with a single MGET."""
    values = read_together(generations) if shared is None else shared
    with ExitStack() as stack:
        for generation, value in zip(generations, values, strict=True):
            stack.enter_context(generation.pinned(value))
        yield


class ProcessMemo(Generic[T]):
    """A value per key, rebuilt by ``loader`` when the generation changes or the copy is too old.

    Misses (``None``) are kept only with ``keep_misses``: a memo keyed by client-supplied names (tenants)
    must not grow with every unknown name.
    """

    def __init__(self, loader: Callable[[str], T], generation: Generation, *, keep_misses: bool = False):
        self._loader = loader
        self._generation = generation
        self._keep_misses = keep_misses
        self._lock = threading.Lock()
        self._values: dict[str, tuple[T, str, float]] = {}

    def get(self, key: str) -> T:
        generation = self._generation.current()
        entry = self._values.get(key)
        now = time.monotonic()
        if entry is not None and entry[1] == generation and now - entry[2] < settings.FLK_CONFIG_MAX_AGE_SECONDS:
            return entry[0]
        value = self._loader(key)
        if value is not None or self._keep_misses:
            with self._lock:
                self._values[key] = (value, generation, now)
        return value

    def peek(self, key: str) -> T | None:
        """The last copy kept for ``key`` whatever its generation or age (None when there is none)."""
        entry = self._values.get(key)
        return entry[0] if entry is not None else None

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
