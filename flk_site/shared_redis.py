"""One Redis client per process for the request path: rate limits and cache generations.

The request path talks to Redis on every submission, so it keeps one client (and its connection pool)
per process instead of building one per call: building a ``redis.Redis`` costs more than the round trip.
Timeouts are short on purpose: a Redis that stops answering must not stall a request. redis-py's pool
notices a fork and opens new connections in the child, so gunicorn workers never share a socket.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

TIMEOUT_SECONDS = 0.25

_lock = threading.Lock()
_current: tuple[str, redis.Redis] | None = None


def client() -> redis.Redis | None:
    """The process's client for ``REDIS_URL``, or None when Redis is not configured."""
    global _current
    url = settings.REDIS_URL
    if not url:
        return None
    current = _current
    if current is None or current[0] != url:  # first use, or REDIS_URL changed (tests override it)
        with _lock:
            if _current is None or _current[0] != url:
                _current = (url, redis.Redis.from_url(
                    url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS,
                    retry_on_timeout=False,
                ))  # fmt: skip
            current = _current
    return current[1]
