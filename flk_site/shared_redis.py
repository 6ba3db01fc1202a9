"""One Redis client per process for the request path: rate limits and cache generations.

The request path talks to Redis on every submission, so it keeps one client (and its connection pool)
per process instead of building one per call: building a ``redis.Redis`` costs more than the round trip.
Timeouts are short on purpose: a Redis that stops answering must not stall a request. redis-py's pool
notices a fork and opens new connections in the child, so gunicorn workers never share a socket.
"""

from __future__ import annotations

import os
import threading

import redis
from django.conf import settings

TIMEOUT_SECONDS = 0.25

_lock = threading.Lock()
_current: tuple[str, redis.Redis] | None = None
_thread = threading.local()


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


def command(*args: object) -> object:
    """Send one command on this thread's own connection and return the reply: the request path's lane.

    The client's pool takes a lock, polls the socket for stray data and records pool statistics on every
    command; on the path every submission takes, each thread keeps a connection of its own instead (made
    with the client's settings: address, database, password, timeouts). A kept connection that turns out
    dead (Redis restarted since its last use) is replaced and the command sent once more; a timeout, or a
    failure on a new connection, raises ``redis.RedisError`` as the client would. Raises ConnectionError
    when ``REDIS_URL`` is not set.
    """
    shared = client()
    if shared is None:
        raise redis.ConnectionError("REDIS_URL is not set")
    pool = shared.connection_pool
    kept = getattr(_thread, "connection", None)
    fresh = kept is None or kept[0] is not pool or kept[1] != os.getpid()  # a new URL, or a forked child
    if fresh:
        kept = _thread.connection = (pool, os.getpid(), pool.connection_class(**pool.connection_kwargs))
    connection = kept[2]
    while True:
        try:
            connection.send_command(*args)  # connects first when the socket is closed
            return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            connection.disconnect()
            if fresh or isinstance(exc, redis.TimeoutError):
                raise
            fresh = True  # once more, on a new socket
