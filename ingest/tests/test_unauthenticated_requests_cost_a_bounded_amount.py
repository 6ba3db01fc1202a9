"""Requests without a valid signature cost a bounded amount: they cannot spend a tenant's rate, an address
has its own bucket, a tenant's failures move its bodies to authentication before storage, and the WAL has
byte budgets (per tenant, in total, and a disk reserve) that answer 503 + Retry-After when spent."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import RequestFactory

from flk_site import shared_redis
from flk_site.testing import make_pcs, signed
from ingest import ratelimit, wal
from ingest.client_address import client_address

pytestmark = pytest.mark.django_db
JUNK = b'{"x":1}'


@pytest.fixture(autouse=True)
def _fresh_buckets(settings):
    """Own buckets for each test (the shared total WAL budget among them), in Redis and in this process."""
    ratelimit.limiter.reset()
    wal.free_space.clear()
    yield
    shared_redis.client().delete(ratelimit.WAL_TOTAL, ratelimit.WAL_TENANT + ratelimit.UNVERIFIED)
    ratelimit.limiter.reset()
    wal.free_space.clear()


def post(client, pcs, tenant: str, address: str = "10.1.0.1"):
    data = pcs if isinstance(pcs, bytes) else json.dumps(pcs).encode()
    return client.generic("POST", "/v1/pcs/submit", data, content_type="application/json",
                          HTTP_X_TENANT_ID=tenant, REMOTE_ADDR=address)  # fmt: skip


def records_of(tenant: str) -> list[bytes]:
    return [r.body for r in wal.iter_records() if r.tenant == tenant]


@pytest.fixture
def tenant(make_tenant):
    """A fresh HMAC tenant signing with "testkey"; returns its name."""

    def _make(**fields):
        name = f"t-{uuid.uuid4().hex[:10]}"
        row = make_tenant(name, hmac={"k1": "testkey"})
        for field, value in fields.items():
            setattr(row, field, value)
        row.save()
        return name

    return _make


def test_junk_without_a_key_does_not_spend_the_tenants_rate(client, tenant):
    name = tenant(rate_per_second=0.01, burst=3)
    junk = [post(client, JUNK, name, address=f"10.2.0.{n % 200}").status_code for n in range(400)]
    assert set(junk) == {400}
    assert post(client, signed(make_pcs()), name).status_code == 200
    # The tenant's own rate still holds for signed traffic.
    answers = [post(client, signed(make_pcs()), name).status_code for _ in range(3)]
    assert answers[-1] == 429


def test_bad_signatures_do_not_spend_the_tenants_rate_either(client, tenant):
    name = tenant(rate_per_second=0.01, burst=2)
    forged = [post(client, signed(make_pcs(), key=b"guess"), name).status_code for _ in range(30)]
    assert set(forged) == {401}
    assert post(client, signed(make_pcs()), name).status_code == 200


def test_an_address_over_its_rate_gets_429_and_other_addresses_go_on(client, tenant, settings):
    settings.FLK_PREAUTH_ADDRESS_RATE, settings.FLK_PREAUTH_ADDRESS_BURST = 0.01, 5
    name = tenant()
    busy = f"10.3.{uuid.uuid4().int % 250}.9"
    answers = [post(client, JUNK, name, address=busy) for _ in range(6)]
    assert [a.status_code for a in answers] == [400] * 5 + [429]
    assert int(answers[-1]["Retry-After"]) >= 1
    assert post(client, signed(make_pcs()), name, address="10.3.0.200").status_code == 200


def test_after_the_failure_bucket_empties_junk_never_reaches_the_wal(client, tenant, settings):
    settings.FLK_PREAUTH_FAILURE_RATE, settings.FLK_PREAUTH_FAILURE_BURST = 0.001, 3
    name = tenant()
    for n in range(20):
        assert post(client, JUNK, name, address=f"10.4.0.{n}").status_code == 400
    assert len(records_of(name)) == 3  # the failure bucket's burst; then authentication comes first
    pcs = signed(make_pcs())
    assert post(client, pcs, name).status_code == 200
    # Signed bodies are still made durable before they are accepted.
    assert [json.loads(b)["pcs_id"] for b in records_of(name)[3:]] == [pcs["pcs_id"]]
    assert post(client, signed(make_pcs(), key=b"guess"), name).status_code == 401
    assert len(records_of(name)) == 4


def test_a_spent_tenant_wal_budget_answers_503_while_other_tenants_flow(client, tenant, settings):
    settings.FLK_WAL_TENANT_BUDGET_BYTES = 65536
    flooded, other = tenant(), tenant()
    junk = b'{"x":"' + b"a" * (32768 - 8) + b'"}'  # two spend the budget
    assert [post(client, junk, flooded).status_code for _ in range(2)] == [400, 400]
    spent = post(client, signed(make_pcs()), flooded)
    assert spent.status_code == 503 and spent.json()["code"] == "wal_budget"
    assert int(spent["Retry-After"]) >= 1
    assert [post(client, signed(make_pcs()), other).status_code for _ in range(5)] == [200] * 5


def test_signed_bodies_do_not_spend_the_wal_budget(client, tenant, settings):
    settings.FLK_WAL_TENANT_BUDGET_BYTES = 65536
    name = tenant()
    padded = [signed(make_pcs(note="n" * 20000)) for _ in range(8)]  # 160 KB, over twice the budget
    assert [post(client, pcs, name).status_code for pcs in padded] == [200] * 8


def test_the_total_wal_budget_bounds_junk_of_every_tenant(client, tenant, settings):
    settings.FLK_WAL_TOTAL_BUDGET_BYTES = 65536
    junk = b'{"x":"' + b"a" * 30000 + b'"}'
    names = [tenant() for _ in range(3)]
    answers = [post(client, junk, name).status_code for name in names]
    assert answers == [400, 400, 503]


def test_a_full_disk_reserve_refuses_before_writing(client, tenant, settings):
    settings.FLK_WAL_MIN_FREE_BYTES = 2**62
    name = tenant()
    refused = post(client, signed(make_pcs()), name)
    assert refused.status_code == 503 and refused.json()["code"] == "wal_full"
    assert records_of(name) == []


def test_the_forwarded_address_counts_only_behind_a_trusted_proxy(settings):
    factory = RequestFactory()
    spoofed = factory.post("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_address(spoofed) == "203.0.113.7"
    settings.FLK_TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxied = factory.post("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.1, 10.0.0.9")
    assert client_address(proxied) == "198.51.100.1"  # the left entry was written by the client itself
    assert client_address(spoofed) == "203.0.113.7"  # not a trusted proxy: its header is ignored
    garbage = factory.post("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="nonsense")
    assert client_address(garbage) == "10.0.0.5"
