"""The token bucket per tenant: 429 with an accurate Retry-After once it is empty, shared through Redis."""

from __future__ import annotations

import logging
import time
import uuid

import pytest
import redis
from django.conf import settings as django_settings
from prometheus_client import REGISTRY

from flk_site import shared_redis
from flk_site.testing import bearer, issue_api_key, make_pcs
from ingest import ratelimit
from tenancy.config_cache import announce_change
from tenancy.models import Tenant


@pytest.fixture(autouse=True)
def _fresh_limiter():
    ratelimit.limiter.reset()
    yield
    ratelimit.limiter.reset()


@pytest.fixture
def limited_tenant(make_tenant):
    """An unsigned tenant with its own bucket of ``burst`` tokens refilled at ``rate`` per second."""

    def _make(rate: float, burst: float):
        name = f"rl-{uuid.uuid4().hex[:12]}"
        tenant = make_tenant(name, sign_alg="none")
        tenant.rate_per_second, tenant.burst = rate, burst
        tenant.save()
        return name

    return _make


def _degraded_count() -> float:
    return REGISTRY.get_sample_value("flk_rate_limit_degraded_total") or 0.0


def test_the_request_after_the_burst_gets_429_with_retry_after(submit, limited_tenant):
    tenant = limited_tenant(rate=1, burst=2)
    assert [submit(make_pcs(), tenant=tenant).status_code for _ in range(2)] == [200, 200]
    refused = submit(make_pcs(), tenant=tenant)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert refused.json()["code"] == "rate_limited"


def test_a_submission_succeeds_after_waiting_retry_after(submit, limited_tenant):
    tenant = limited_tenant(rate=2, burst=1)
    assert submit(make_pcs(), tenant=tenant).status_code == 200
    refused = submit(make_pcs(), tenant=tenant)
    assert refused.status_code == 429
    time.sleep(int(refused["Retry-After"]))
    assert submit(make_pcs(), tenant=tenant).status_code == 200


def test_retry_after_is_the_wait_rounded_up_to_whole_seconds(submit, limited_tenant):
    # One token every 2.5 s: right after the burst the next token is about 2.5 s away, so 3 seconds.
    tenant = limited_tenant(rate=0.4, burst=1)
    assert submit(make_pcs(), tenant=tenant).status_code == 200
    assert submit(make_pcs(), tenant=tenant)["Retry-After"] == "3"


def test_a_refused_submission_is_not_stored(submit, limited_tenant, client):
    tenant = limited_tenant(rate=0.01, burst=1)
    key = bearer(issue_api_key(tenant))
    submit(make_pcs(), tenant=tenant)
    pcs = make_pcs()
    assert submit(pcs, tenant=tenant).status_code == 429
    assert client.get(f"/v1/pcs/{pcs['pcs_id']}", HTTP_X_TENANT_ID=tenant, **key).status_code == 404


def test_the_bucket_lives_in_redis(submit, limited_tenant):
    tenant = limited_tenant(rate=0.01, burst=3)
    submit(make_pcs(), tenant=tenant)
    stored = redis.Redis.from_url(django_settings.REDIS_URL).hgetall(f"flk:bucket:{tenant}")
    assert float(stored[b"t"]) == pytest.approx(2, abs=0.01)


def _bucket_tokens(tenant: str) -> float:
    return float(redis.Redis.from_url(django_settings.REDIS_URL).hget(f"flk:bucket:{tenant}", "t"))


def test_a_connection_redis_dropped_is_replaced_without_degrading(submit, limited_tenant):
    """Redis restarting, or killing idle clients, closes the connection a request thread keeps."""
    tenant = limited_tenant(rate=0.01, burst=5)
    assert submit(make_pcs(), tenant=tenant).status_code == 200
    own_id = shared_redis.command("CLIENT", "ID")  # the connection this thread's requests use
    assert redis.Redis.from_url(django_settings.REDIS_URL).client_kill_filter(_id=own_id) == 1
    before = _degraded_count()
    assert submit(make_pcs(), tenant=tenant).status_code == 200
    assert _degraded_count() == before
    assert _bucket_tokens(tenant) == pytest.approx(3, abs=0.01)
    assert shared_redis.command("CLIENT", "ID") != own_id


def test_a_redis_that_forgot_the_script_is_sent_it_again(submit, limited_tenant):
    tenant = limited_tenant(rate=0.01, burst=5)
    assert submit(make_pcs(), tenant=tenant).status_code == 200
    redis.Redis.from_url(django_settings.REDIS_URL).script_flush()
    before = _degraded_count()
    assert submit(make_pcs(), tenant=tenant).status_code == 200
    assert _degraded_count() == before
    assert _bucket_tokens(tenant) == pytest.approx(3, abs=0.01)


def test_with_redis_unreachable_ingest_keeps_working_on_a_per_process_bucket(submit, limited_tenant, settings, caplog):
    tenant = limited_tenant(rate=0.01, burst=2)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused
    before = _degraded_count()
    with caplog.at_level(logging.WARNING, logger="flk.ratelimit"):
        answers = [submit(make_pcs(), tenant=tenant).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    assert _degraded_count() - before == 3
    warnings = [r for r in caplog.records if r.getMessage() == "rate_limit_degraded"]
    assert len(warnings) == 1  # logged once per minute, not once per request


def test_without_redis_configured_the_per_process_bucket_is_not_counted_as_degraded(submit, limited_tenant, settings):
    """The embedded default (no REDIS_URL) limits per process by design: the degradation alarm stays quiet."""
    tenant = limited_tenant(rate=0.01, burst=2)
    settings.REDIS_URL = None
    before = _degraded_count()
    answers = [submit(make_pcs(), tenant=tenant).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    assert _degraded_count() == before


def test_a_dead_redis_does_not_stall_requests(submit, limited_tenant, settings):
    tenant = limited_tenant(rate=100, burst=100)
    settings.REDIS_URL = "redis://10.255.255.1:6379/0"  # unroutable: the connect times out
    started = time.monotonic()
    for _ in range(20):
        assert submit(make_pcs(), tenant=tenant).status_code == 200
    # One short connect timeout, then Redis is left alone during the back-off; without the back-off
    # twenty requests would wait twenty timeouts (5 s).
    assert time.monotonic() - started < 2.5


def test_an_unknown_tenant_name_creates_no_bucket(submit, db):
    name = f"nosuch-{uuid.uuid4().hex[:12]}"
    for _ in range(2):  # the second time too: a refused name is not kept as a known tenant
        assert submit(make_pcs(), tenant=name).status_code == 401
    assert not redis.Redis.from_url(django_settings.REDIS_URL).exists(f"flk:bucket:{name}")


def test_a_lowered_rate_applies_from_the_next_request(submit, limited_tenant):
    tenant = limited_tenant(rate=1000, burst=1000)
    assert submit(make_pcs(), tenant=tenant).status_code == 200
    Tenant.objects.filter(name=tenant).update(rate_per_second=0.01, burst=1)
    announce_change()  # what the admin does after saving a tenant
    answers = [submit(make_pcs(), tenant=tenant).status_code for _ in range(3)]
    # The tenant's token is taken after the signature, at the rate of the tenant as the request found it: the
    # request that notices the change already sees a bucket of at most the new burst (1 token), spends it,
    # and the tenant waits from the next one.
    assert answers == [200, 429, 429]
