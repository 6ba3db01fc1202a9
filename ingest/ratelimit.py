"""Token-bucket rate limit per tenant, shared by every worker and replica through Redis (step 2).

One atomic round trip per request: a Lua script, loaded once and then called by its SHA (EVALSHA), refills
the tenant's bucket from the time elapsed, takes a token if there is one, and otherwise says how long until
there will be. Redis's own clock is used, so replicas with skewed clocks share one bucket consistently.

Known limits, stated plainly: when ``REDIS_URL`` is unset, or Redis does not answer within a quarter of a
second, each process keeps its own bucket, so the effective limit is the per-tenant rate multiplied by the
number of processes. That degradation is logged (at most once per ``_WARN_EVERY`` seconds) and counted
(``flk_rate_limit_degraded_total``); after a failure Redis is left alone for ``_REDIS_BACKOFF`` seconds so
that a dead Redis costs one timeout every few seconds, not one per request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from django.conf import settings

from flk_site import shared_redis
from ingest import metrics

log = logging.getLogger("flk.ratelimit")

_KEY_PREFIX = "flk:bucket:"
_REDIS_BACKOFF = 5.0
_WARN_EVERY = 60.0

# KEYS[1] bucket, KEYS[2..n] plain string keys read in the same round trip (the cache generations the
# request pins); ARGV rate (tokens/s), burst (bucket size). Returns {allowed (0/1), seconds to wait, the
# value of each further key (nil when never set)}. The wait is a string: Redis would truncate a Lua number.
_TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then tokens = tokens + (now - ts) * rate end
-- Clamped on every call: the bucket may have been filled under a larger burst before an admin lowered it.
tokens = math.min(burst, tokens)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local out = {allowed, tostring(wait)}
for i = 2, #KEYS do out[i + 1] = redis.call('GET', KEYS[i]) end
return out
"""


_TOKEN_BUCKET_SHA = hashlib.sha1(_TOKEN_BUCKET_LUA.encode()).hexdigest()


def _run_script(key: str, read: Sequence[str], rate: float, burst: float) -> list:
    """The script by its SHA (EVALSHA); on a Redis that does not hold it yet, by its text (EVAL caches it)."""
    args = (1 + len(read), key, *read, rate, burst)
    try:
        return shared_redis.command("EVALSHA", _TOKEN_BUCKET_SHA, *args)
    except redis.exceptions.NoScriptError:
        return shared_redis.command("EVAL", _TOKEN_BUCKET_LUA, *args)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # whole seconds, rounded up; 0 when allowed


def retry_after_seconds(wait: float) -> int:
    """``Retry-After`` for a wait in seconds: whole seconds rounded up, at least 1 (RFC 9110 10.2.3)."""
    return max(1, math.ceil(wait - 1e-9))


class LocalBuckets:
    """Per-process token buckets: the fallback when Redis is absent or down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, rate: float, burst: float) -> Decision:
        now = time.monotonic()
        with self._lock:  # gthread workers share this dict
            tokens, ts = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - ts) * rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return Decision(True, 0)
            self._buckets[key] = (tokens, now)
        return Decision(False, retry_after_seconds((1 - tokens) / rate))

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


class RateLimiter:
    def __init__(self) -> None:
        self.local = LocalBuckets()
        self._redis_down_until = 0.0
        self._last_warning = -math.inf

    def take(self, tenant: str, rate: float, burst: float, read: Sequence[str] = ()) -> tuple[Decision, list | None]:
        """Take one token from ``tenant``'s bucket; say how long to wait when it is empty.

        ``read`` names string keys fetched in the same round trip; their values (None for a missing key)
        come back second, or None instead of the list when Redis could not be asked.
        """
        key = _KEY_PREFIX + tenant
        configured = shared_redis.client() is not None
        if configured and time.monotonic() >= self._redis_down_until:
            try:
                allowed, wait, *values = _run_script(key, read, rate, burst)
                values += [None] * (len(read) - len(values))  # Redis drops trailing nils from the reply
                if int(allowed):
                    return Decision(True, 0), values
                return Decision(False, retry_after_seconds(float(wait))), values
            except redis.RedisError as exc:
                self._redis_down_until = time.monotonic() + _REDIS_BACKOFF
                self._warn(exc)
        elif configured:
            self._warn(None)
        metrics.rate_limit_degraded()
        return self.local.take(key, rate, burst), None

    def _warn(self, exc: Exception | None) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            log.warning(
                "rate_limit_degraded",
                extra={"event": "rate_limit_degraded", "error": type(exc).__name__ if exc else "backoff",
                       "backoff_seconds": _REDIS_BACKOFF},
            )  # fmt: skip

    def reset(self) -> None:
        """Forget local buckets and Redis back-off (tests and settings changes)."""
        self.local.clear()
        self._redis_down_until = 0.0


limiter = RateLimiter()


def take_token(
    tenant: str, rate: float | None, burst: float | None, read: Sequence[str] = ()
) -> tuple[Decision, list | None]:
    """The rate-limit decision for one submission of ``tenant`` (overrides of TOKEN_RATE/TOKEN_BURST),
    and the values of the ``read`` keys fetched in the same round trip (None when Redis was not asked)."""
    rate = rate or settings.TOKEN_RATE
    burst = burst or settings.TOKEN_BURST
    return limiter.take(tenant, rate, burst, read)
