"""Token buckets shared by every worker and replica through Redis: the submit path's limits.

Three kinds guard the submit path (docs/operators/security.md). Before anything is trusted: a bucket per client
address (every request), a bucket per tenant of *failed* authentications (400 or 401), and WAL byte
budgets per tenant and in total (the request body's length, given back once its signature verifies, so
only unauthenticated bytes spend them). After the signature verified: the tenant's own rate (TOKEN_RATE),
which nobody without a key can therefore spend.

One atomic round trip per request: a Lua script, loaded once and then called by its SHA (EVALSHA), refills
the tenant's bucket from the time elapsed, takes a token if there is one, and otherwise says how long until
there will be. Redis's own clock is used, so replicas with skewed clocks share one bucket consistently.

Known limits, stated plainly: when ``REDIS_URL`` is unset, or Redis does not answer within a quarter of a
second, each process keeps its own bucket, so the effective limit is the per-tenant rate multiplied by the
number of processes. When Redis is configured but does not answer, that degradation is logged (at most once
per ``_WARN_EVERY`` seconds) and counted (``flk_rate_limit_degraded_total``: never without ``REDIS_URL``, the
embedded default, where per-process buckets are what was asked for); after a failure Redis is left alone for ``_REDIS_BACKOFF`` seconds so
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

# Several buckets in one round trip. KEYS[1..n] the buckets, KEYS[n+1..] plain keys read as above; ARGV[1]
# n, then (rate, burst, cost) per bucket. A cost > 0 is charged, and only if every charged bucket holds
# its cost (all or nothing: a refused request spends nothing); a cost of 0 only looks (is there a token?);
# a cost < 0 gives tokens back, always. Returns {all charged buckets had their cost (0/1), then per bucket
# 1/0 (it held its cost, or a token for a look) and the wait as a string, then the read values}.
_BUCKETS_LUA = """
local n = tonumber(ARGV[1])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tokens, passes, waits = {}, {}, {}
local ok = 1
for i = 1, n do
  local rate = tonumber(ARGV[3 * i - 1])
  local burst = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 't', 'ts')
  local t = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  if now > ts then t = t + (now - ts) * rate end
  t = math.min(burst, t)
  tokens[i] = t
  local need = math.max(cost, 1)
  if cost < 0 or t >= need then
    passes[i] = 1
    waits[i] = '0'
  else
    passes[i] = 0
    waits[i] = tostring((need - t) / rate)
    if cost > 0 then ok = 0 end
  end
end
for i = 1, n do
  local rate = tonumber(ARGV[3 * i - 1])
  local burst = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  if cost < 0 or (cost > 0 and ok == 1) then
    redis.call('HSET', KEYS[i], 't', tostring(math.min(burst, tokens[i] - cost)), 'ts', tostring(now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate * 1000) + 1000)
  end
end
local out = {ok}
for i = 1, n do
  out[#out + 1] = passes[i]
  out[#out + 1] = waits[i]
end
for i = n + 1, #KEYS do out[#out + 1] = redis.call('GET', KEYS[i]) end
return out
"""
_BUCKETS_SHA = hashlib.sha1(_BUCKETS_LUA.encode()).hexdigest()


@dataclass(frozen=True)
class Bucket:
    """One bucket of a charge: its Redis key, refill rate per second, size, and what this request costs it."""

    key: str
    rate: float
    burst: float
    cost: float = 1.0


@dataclass(frozen=True)
class Charge:
    """The outcome of ``RateLimiter.charge``: whether the charged buckets were charged, and per bucket
    whether it held its cost (or, for a look, a token) and how many whole seconds until it would."""

    ok: bool
    passes: tuple[bool, ...]
    waits: tuple[int, ...]

    def first_refusal(self) -> int | None:
        """The index of the first bucket that did not hold its cost, or None."""
        return next((i for i, passed in enumerate(self.passes) if not passed), None)


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

    def charge(self, buckets: Sequence[Bucket]) -> Charge:
        """The semantics of the Redis script ``_BUCKETS_LUA``, in this process."""
        now = time.monotonic()
        with self._lock:
            tokens = []
            for b in buckets:
                t, ts = self._buckets.get(b.key, (b.burst, now))
                tokens.append(min(b.burst, t + max(0.0, now - ts) * b.rate))
            passes = [b.cost < 0 or t >= max(b.cost, 1) for b, t in zip(buckets, tokens, strict=True)]
            ok = all(p for b, p in zip(buckets, passes, strict=True) if b.cost > 0)
            for b, t in zip(buckets, tokens, strict=True):
                if b.cost < 0 or (b.cost > 0 and ok):
                    self._buckets[b.key] = (min(b.burst, t - b.cost), now)
        waits = tuple(
            0 if p else retry_after_seconds((max(b.cost, 1) - t) / b.rate)
            for b, t, p in zip(buckets, tokens, passes, strict=True)
        )
        return Charge(ok, tuple(passes), waits)

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
        if configured:  # without REDIS_URL per-process buckets are the configuration, not a degradation
            metrics.rate_limit_degraded()
        return self.local.take(key, rate, burst), None

    def charge(
        self, buckets: Sequence[Bucket], read: Sequence[str] = (), count_degraded: bool = True
    ) -> tuple[Charge, list | None]:
        """Charge (or look at, or give back to) several buckets in one round trip; see ``_BUCKETS_LUA``.

        ``read`` as for ``take``. Without Redis the buckets are this process's own (module docstring), and
        the degradation is counted unless ``count_degraded`` is off (the later charges of a request that
        was counted at its first).
        """
        configured = shared_redis.client() is not None
        if configured and time.monotonic() >= self._redis_down_until:
            keys = [b.key for b in buckets]
            args = [len(buckets)] + [x for b in buckets for x in (b.rate, b.burst, b.cost)]
            try:
                try:
                    reply = shared_redis.command("EVALSHA", _BUCKETS_SHA, len(keys) + len(read), *keys, *read, *args)
                except redis.exceptions.NoScriptError:
                    reply = shared_redis.command("EVAL", _BUCKETS_LUA, len(keys) + len(read), *keys, *read, *args)
                n = len(buckets)
                passes = tuple(bool(int(reply[1 + 2 * i])) for i in range(n))
                waits = tuple(0 if passes[i] else retry_after_seconds(float(reply[2 + 2 * i])) for i in range(n))
                values = list(reply[1 + 2 * n :])
                values += [None] * (len(read) - len(values))
                return Charge(bool(int(reply[0])), passes, waits), values
            except redis.RedisError as exc:
                self._redis_down_until = time.monotonic() + _REDIS_BACKOFF
                self._warn(exc)
        elif configured:
            self._warn(None)
        if count_degraded and configured:  # as in ``take``: only a Redis that was configured and failed counts
            metrics.rate_limit_degraded()
        return self.local.charge(buckets), None

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


# --- The submit path's buckets ----------------------------------------------------------------------------
ADDRESS, FAILURES, WAL_TENANT, WAL_TOTAL = "flk:addr:", "flk:fail:", "flk:walb:", "flk:walb-total"


def address_bucket(address: str) -> Bucket:
    return Bucket(ADDRESS + address, settings.FLK_PREAUTH_ADDRESS_RATE, settings.FLK_PREAUTH_ADDRESS_BURST)


def failure_bucket(tenant: str, cost: float = 1.0) -> Bucket:
    return Bucket(FAILURES + tenant, settings.FLK_PREAUTH_FAILURE_RATE, settings.FLK_PREAUTH_FAILURE_BURST, cost)


def wal_buckets(tenant: str, size: int) -> list[Bucket]:
    """The WAL byte budgets a body of ``size`` bytes spends (a negative size gives them back).

    Each budget refills over FLK_WAL_BUDGET_WINDOW_SECONDS, so unauthenticated bytes are bounded by a rate:
    at most the total budget per window, and per tenant at most its own budget per window.
    """
    window = settings.FLK_WAL_BUDGET_WINDOW_SECONDS
    tenant_bytes, total_bytes = settings.FLK_WAL_TENANT_BUDGET_BYTES, settings.FLK_WAL_TOTAL_BUDGET_BYTES
    return [
        Bucket(WAL_TENANT + tenant, tenant_bytes / window, tenant_bytes, size),
        Bucket(WAL_TOTAL, total_bytes / window, total_bytes, size),
    ]


@dataclass(frozen=True)
class Gate:
    """What the unauthenticated stage decided for one submission (``admit``).

    ``refusal`` is None, "address" (429) or "wal_budget" (503); ``check_first`` says that the tenant's
    failure bucket is empty, so its bodies are authenticated before they may spend the disk.
    """

    refusal: str | None
    retry_after: int
    check_first: bool
    charged_bytes: int
    values: list | None


def admit(address: str, tenant: str | None, size: int, read: Sequence[str] = ()) -> Gate:
    """The unauthenticated stage of one submission: one round trip before the body is trusted or stored.

    The client address always pays a token. For a tenant this process knows (``tenant``), the WAL byte
    budgets pay the body's size, and a look at the tenant's failure bucket says whether its bodies must
    be authenticated before they are stored (``check_first``; the bytes then come back either way).
    Nothing is charged when anything refuses. ``read`` as for ``RateLimiter.take``.
    """
    buckets = [address_bucket(address)]
    if tenant is not None:
        buckets += [failure_bucket(tenant, cost=0), *wal_buckets(tenant, size)]
    charge, values = limiter.charge(buckets, read)
    if tenant is None:
        return _gate(charge, values, 0, address=True, failures=None)
    return _gate(charge, values, size, address=True, failures=1)


def admit_tenant(tenant: str, size: int) -> Gate:
    """The tenant's part of ``admit`` once the tenant is known (a process's first request for it)."""
    charge, _ = limiter.charge([failure_bucket(tenant, cost=0), *wal_buckets(tenant, size)], count_degraded=False)
    return _gate(charge, None, size, address=False, failures=0)


# The budget every tenant name shares that neither the database nor the process could confirm (the
# database is away and the process never saw the name): one tenant's budget for all of them.
UNVERIFIED = "?unverified"


def admit_unverified(size: int) -> Gate:
    """WAL bytes for a body whose tenant nobody can confirm now; never given back."""
    charge, _ = limiter.charge(wal_buckets(UNVERIFIED, size), count_degraded=False)
    return _gate(charge, None, size, address=False, failures=None)


def _gate(charge: Charge, values: list | None, size: int, *, address: bool, failures: int | None) -> Gate:
    """Read a charge laid out as [address bucket if ``address``] [failure bucket at ``failures``] [WAL
    budgets, last two]."""
    if not charge.ok:
        if address and not charge.passes[0]:
            return Gate("address", charge.waits[0], False, 0, values)
        return Gate("wal_budget", max(charge.waits[-2:]), False, 0, values)
    check_first = failures is not None and not charge.passes[failures]
    return Gate(None, 0, check_first, size, values)


def authenticated(tenant: str, rate: float | None, burst: float | None, refund_bytes: int) -> Decision:
    """A signature verified: charge the tenant's own bucket, and give back the WAL bytes its body spent."""
    buckets = [Bucket(_KEY_PREFIX + tenant, rate or settings.TOKEN_RATE, burst or settings.TOKEN_BURST)]
    if refund_bytes:
        buckets += wal_buckets(tenant, -refund_bytes)
    charge, _ = limiter.charge(buckets, count_degraded=False)
    return Decision(True, 0) if charge.ok else Decision(False, charge.waits[0])


def authenticated_items(
    tenant: str, rate: float | None, burst: float | None, count: int, refund_bytes: int
) -> tuple[int, int]:
    """``count`` signed items of a batch: charge the tenant's bucket a token each, in the items' order.

    Returns how many were allowed (the first ones) and, when not all were, the Retry-After of the others.
    All of them in one round trip when the bucket holds them; otherwise one token at a time until it is
    empty, so that the items get what as many single submissions in a row would get.
    """
    rate, burst = rate or settings.TOKEN_RATE, burst or settings.TOKEN_BURST
    refund = wal_buckets(tenant, -refund_bytes) if refund_bytes else []
    if count <= 0:
        if refund:
            limiter.charge(refund, count_degraded=False)
        return 0, 0
    charge, _ = limiter.charge([Bucket(_KEY_PREFIX + tenant, rate, burst, count), *refund], count_degraded=False)
    if charge.ok:
        return count, 0
    if refund:
        limiter.charge(refund, count_degraded=False)
    allowed = 0
    while allowed < count:
        one, _ = limiter.charge([Bucket(_KEY_PREFIX + tenant, rate, burst)], count_degraded=False)
        if not one.ok:
            return allowed, one.waits[0]
        allowed += 1
    return allowed, 0


def authentication_failed(tenant: str, refund_bytes: int = 0, count: int = 1) -> None:
    """``count`` bodies of ``tenant`` failed their schema or signature: charge the tenant's failure bucket
    (at most its size at once, so that a large batch of failures still empties it)."""
    buckets = [failure_bucket(tenant, cost=min(count, settings.FLK_PREAUTH_FAILURE_BURST))]
    if refund_bytes:
        buckets += wal_buckets(tenant, -refund_bytes)
    limiter.charge(buckets, count_degraded=False)


def give_back_wal_bytes(tenant: str, size: int) -> None:
    """The body was never written (refused for another reason): its WAL bytes are not spent."""
    limiter.charge(wal_buckets(tenant, -size), count_degraded=False)
