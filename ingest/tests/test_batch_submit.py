"""POST /v1/pcs/batch: each item gets the answer it would get alone from /v1/pcs/submit, in order."""

from __future__ import annotations

import json
import random

import pytest

from agent_client.pcs import sign_pcs
from flk_site.testing import make_pcs, signed
from ingest import wal
from ingest.models import PcsRecord
from ingest.replay import replay_wal

pytestmark = pytest.mark.django_db
# Two tenants of names as long as each other, so that answers naming the tenant compare after a rename.
BATCHED, SINGLE = "tenant-b", "tenant-s"


@pytest.fixture
def twin_tenants(make_tenant, settings):
    settings.TOKEN_RATE, settings.TOKEN_BURST = 10_000.0, 10_000.0
    for name in (BATCHED, SINGLE):
        make_tenant(name, hmac={"k1": "testkey"}, min_pcs_version="0.2")


@pytest.fixture
def batch(client):
    def _batch(data: bytes | str | list, tenant: str | None = BATCHED, content_type: str = "application/json"):
        payload = data if isinstance(data, bytes | str) else json.dumps(data)
        headers = {"HTTP_X_TENANT_ID": tenant} if tenant is not None else {}
        return client.generic("POST", "/v1/pcs/batch", payload, content_type=content_type, **headers)

    return _batch


def mixed_items(rng: random.Random, ndjson: bool) -> list[bytes]:
    """Valid, escalated, replayed, retried, conflicting, wrongly signed, unknown-version, 0.1 under a 0.2
    minimum, schema-invalid and non-object items (and, for NDJSON, lines that are not JSON), shuffled."""
    valid = [signed(make_pcs()) for _ in range(6)]
    escalated = signed(dict(make_pcs(), D_hat=make_pcs()["D_hat"] + 0.4))
    pool: list[dict | str] = [*valid, escalated]
    pool.append(signed(dict(valid[0], attempt=2, sent_at="2030-01-01T00:00:00Z")))  # a retry: a replay
    pool.append(signed(dict(valid[1], coh_star=0.75, budget=0.289)))  # same pcs_id, other content: 409
    pool.append(sign_pcs(make_pcs(), "hmac", b"not-the-key"))
    pool.append(signed(dict(make_pcs(), version="9.9")))
    pool.append(signed(dict(make_pcs(), version="0.1")))
    pool.append(dict(make_pcs(), pcs_id="0" * 64))  # pcs_id that is not its own
    pool += [{"pcs_id": "x"}, "5", '"text"', "[]", '{"a": 1, "a": 2}', '{"D_hat": NaN}']
    if ndjson:
        pool += ["{not json", '{"pcs_id": "', "\x00"]
    items = [p.encode() if isinstance(p, str) else json.dumps(p).encode() for p in pool]
    items += [items[k] for k in rng.sample(range(len(valid)), 3)]  # replays of the same bytes
    rng.shuffle(items)
    return items


def normalised(answer: dict) -> str:
    return json.dumps(answer, sort_keys=True).replace(SINGLE, BATCHED)


@pytest.mark.parametrize("ndjson", [False, True], ids=["json", "ndjson"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_item_gets_exactly_the_answer_it_would_get_alone(twin_tenants, submit, batch, ndjson, seed):
    items = mixed_items(random.Random(seed), ndjson)
    if ndjson:
        response = batch(b"\n".join(items) + b"\n", content_type="application/x-ndjson")
    else:
        response = batch(b"[" + b",\n ".join(items) + b"]")
    assert response.status_code == 200
    results = response.json()["results"]
    alone = [submit(item, tenant=SINGLE) for item in items]
    assert len(results) == len(items)
    statuses = {r["status"] for r in results}
    assert {200, 202, 400, 401, 403, 409} <= statuses
    for k, (got, expected) in enumerate(zip(results, alone, strict=True)):
        assert got["status"] == expected.status_code, (k, items[k][:80], got)
        assert normalised(got["body"]) == normalised(expected.json()), (k, items[k][:80])
    # The same rows as the singles stored: what was stored for one tenant was stored for the other.
    stored = {
        tenant: sorted(PcsRecord.objects.filter(tenant__name=tenant).values_list("pcs_id", "status_code", "decision"))
        for tenant in (BATCHED, SINGLE)
    }
    assert stored[BATCHED] == stored[SINGLE] and stored[BATCHED]


def test_a_replayed_batch_gets_every_first_answer_marked_dedup(twin_tenants, batch):
    pcs = [signed(make_pcs()) for _ in range(5)]
    first = batch(pcs).json()["results"]
    again = batch(pcs).json()["results"]
    assert [r["status"] for r in again] == [r["status"] for r in first] == [200] * 5
    assert all(r["body"]["dedup"] for r in again) and not any(r["body"]["dedup"] for r in first)
    assert PcsRecord.objects.filter(tenant__name=BATCHED).count() == 5


@pytest.mark.parametrize("body", [b'{"pcs_id": "x"}', b"not json", b"[1, 2", b"  ", b'"[]"', b"[1] 2"])
def test_a_body_that_is_not_a_list_is_400_and_stores_nothing(twin_tenants, batch, body):
    response = batch(body)
    assert response.status_code == 400 and response.json()["code"] == "batch_malformed"
    assert PcsRecord.objects.count() == 0


def test_an_item_larger_than_a_single_body_is_its_own_413(twin_tenants, submit, batch, settings):
    settings.FLK_MAX_BODY_BYTES = 2048
    large = signed(dict(make_pcs(), note="x" * 3000))
    small = signed(make_pcs())
    results = batch([large, small]).json()["results"]
    alone = submit(large, tenant=SINGLE)
    assert [r["status"] for r in results] == [alone.status_code, 200] == [413, 200]
    assert results[0]["body"] == alone.json()
    assert not PcsRecord.objects.filter(pcs_id=large["pcs_id"]).exists()


def test_an_empty_list_is_an_empty_answer(twin_tenants, batch):
    assert batch([]).json() == {"results": []}


def test_too_many_items_is_413_and_nothing_is_stored_even_by_replay(twin_tenants, batch, settings, tmp_path):
    settings.FLK_WAL_DIR = tmp_path / "wal"
    settings.FLK_BATCH_MAX_ITEMS = 3
    response = batch([signed(make_pcs()) for _ in range(4)])
    assert response.status_code == 413 and response.json()["code"] == "batch_too_large"
    assert "at most 3" in response.json()["detail"]
    assert batch([signed(make_pcs()) for _ in range(3)]).status_code == 200
    wal.close_writers()
    before = PcsRecord.objects.count()
    assert before == 3
    report = replay_wal(tmp_path / "wal")
    assert report.stored == 0 and PcsRecord.objects.count() == 3


def test_too_many_bytes_is_413_before_anything_is_read(twin_tenants, batch, settings):
    settings.FLK_BATCH_MAX_BYTES = 65536
    pcs = [signed(make_pcs()) for _ in range(150)]  # about 100 KB
    response = batch(pcs)
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"
    assert PcsRecord.objects.count() == 0


def test_another_media_type_is_415(twin_tenants, batch):
    response = batch([signed(make_pcs())], content_type="text/plain")
    assert response.status_code == 415 and PcsRecord.objects.count() == 0


def test_an_unknown_tenant_is_401_for_the_whole_batch(twin_tenants, batch):
    response = batch([signed(make_pcs())], tenant="nobody")
    assert response.status_code == 401 and response.json()["code"] == "unknown_tenant"


def test_the_tenant_rate_limit_counts_items(make_tenant, batch, settings):
    tenant = make_tenant(BATCHED, hmac={"k1": "testkey"})
    tenant.rate_per_second, tenant.burst = 0.01, 3
    tenant.save()
    pcs = [signed(make_pcs()) for _ in range(5)]
    results = batch(pcs).json()["results"]
    assert [r["status"] for r in results] == [200, 200, 200, 429, 429]
    assert all(r["retry_after"] >= 1 and r["body"]["code"] == "rate_limited" for r in results[3:])
    assert PcsRecord.objects.count() == 3


def test_the_whole_body_is_in_the_wal_before_any_item_is_read_and_replay_reads_its_items(
    twin_tenants, batch, settings, tmp_path
):
    settings.FLK_WAL_DIR = tmp_path / "wal"
    pcs = [signed(make_pcs()) for _ in range(4)]
    lines = b"\n".join(json.dumps(p).encode() for p in pcs) + b"\n{broken\n"
    response = batch(lines, content_type="application/x-ndjson")
    assert [r["status"] for r in response.json()["results"]] == [200, 200, 200, 200, 400]
    wal.close_writers()
    [segment] = wal.segments(tmp_path / "wal")
    assert segment.read_bytes().count(wal.MAGIC) == 1  # one record, one append, for the batch
    assert [r.body for r in wal.iter_records(tmp_path / "wal")] == lines.split(b"\n")[:5]
    PcsRecord.objects.all().delete()  # as if the database had lost them
    report = replay_wal(tmp_path / "wal")
    assert report.stored == 4 and report.skipped_by_reason == {"unparsable": 1}
