"""Dedup on (tenant, pcs_id): first write wins, a replay gets the first answer, a changed PCS gets 409."""

from __future__ import annotations

import pytest

from flk_site.testing import make_pcs, signed
from ingest.models import PcsRecord

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("escalated", [False, True])
def test_replay_returns_the_first_answer_with_dedup_true(hmac_default_tenant, submit, escalated):
    pcs = make_pcs()
    if escalated:
        pcs["D_hat"] = 2.5
    pcs = signed(pcs)
    first = submit(pcs)
    again = submit(pcs)
    assert again.status_code == first.status_code == (202 if escalated else 200)
    assert first.json()["dedup"] is False and again.json()["dedup"] is True
    assert {**again.json(), "dedup": False} == first.json()
    assert PcsRecord.objects.count() == 1


def test_a_retry_with_another_attempt_number_is_still_a_replay(hmac_default_tenant, submit):
    pcs = signed(make_pcs())
    submit(pcs)
    retry = signed(dict(pcs, attempt=2, sent_at="2030-01-01T00:00:00Z"))  # 0.2 signs the attempt: signed again
    response = submit(retry)
    assert response.status_code == 200 and response.json()["dedup"] is True
    assert PcsRecord.objects.get().attempt == 1


def test_same_pcs_id_with_a_different_signed_subset_is_409_and_changes_nothing(hmac_default_tenant, submit):
    pcs = signed(make_pcs())
    submit(pcs)
    changed = signed(dict(pcs, coh_star=0.75, budget=0.289))
    response = submit(changed)
    assert response.status_code == 409
    assert response.json()["code"] == "pcs_id_conflict"
    record = PcsRecord.objects.get()
    assert record.coh_star == pcs["coh_star"]
    assert submit(pcs).json()["dedup"] is True


@pytest.mark.django_db(transaction=True)
def test_a_replay_after_params_changed_keeps_the_stored_verdict(hmac_default_tenant, submit):
    from policy.models import VerifyParams

    pcs = make_pcs()
    pcs["D_hat"] += 0.3
    pcs = signed(pcs)
    assert submit(pcs).status_code == 202
    VerifyParams.objects.filter(is_active=True).update(is_active=False)
    VerifyParams.objects.create(version=2, is_active=True, tol_d=1.0, reason="wider for a test")
    # (the create announces the change to every process once committed)
    again = submit(pcs)
    assert again.status_code == 202 and again.json()["params_version"] == 1
    assert submit(signed(dict(make_pcs(), D_hat=1.1))).json()["params_version"] == 2


def test_the_same_pcs_id_in_two_tenants_is_two_records(make_tenant, submit):
    make_tenant("a", sign_alg="none")
    make_tenant("b", sign_alg="none")
    pcs = make_pcs()
    assert submit(pcs, tenant="a").json()["dedup"] is False
    assert submit(pcs, tenant="b").json()["dedup"] is False
    assert PcsRecord.objects.filter(pcs_id=pcs["pcs_id"]).count() == 2


def test_a_replay_reads_one_row_however_many_the_tenant_has(hmac_default_tenant, submit):
    """The dedup statement is prepared while the table is empty; a replay must not read the tenant's rows.

    PostgreSQL may keep a generic plan made before the table has any statistics (and with autovacuum off,
    forever). Forcing the generic plan from the first execution reproduces that; 20 000 rows are then added
    without ANALYZE, and the replay's reads of the outcome table are counted in this transaction.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
    pcs = signed(make_pcs())
    first = submit(pcs)
    assert first.status_code == 200
    record = PcsRecord.objects.get()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {PcsRecord._meta.db_table} (tenant_id, pcs_id, shard_id, epoch, attempt, signed_digest,"
            " key_id, body, d_hat, coh_star, r, budget, regime, recomputed_d_hat, score, audit_sample, audit_probability,"
            " status_code, decision, response, params_version, received_at, verified_at)"
            " SELECT tenant_id, lpad(to_hex(g), 64, '0'), shard_id, g, attempt, signed_digest, key_id, body, d_hat,"
            " coh_star, r, budget, regime, recomputed_d_hat, score, audit_sample, audit_probability, status_code, decision,"
            " response,"
            f" params_version, received_at, verified_at FROM {PcsRecord._meta.db_table}, generate_series(1, 20000) g"
            " WHERE id = %s",
            [record.id],
        )

    def rows_read() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables"
                " WHERE relname = %s",
                [PcsRecord._meta.db_table],
            )
            return cursor.fetchone()[0]

    before = rows_read()
    again = submit(pcs)
    assert again.status_code == 200 and again.json()["dedup"] is True
    assert rows_read() - before <= 2


def test_many_outcomes_inserted_together_each_get_their_own_answer(hmac_default_tenant, submit):
    """store.insert_many (the WAL replay's slices): new rows, rows already stored, and a key given twice."""
    from datetime import UTC, datetime

    from ingest import store
    from tenancy.models import Tenant

    tenant_id = Tenant.objects.get(name="default").id
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def record(pcs_id: str, digest: str = "d" * 64) -> store.NewRecord:
        return store.NewRecord(
            tenant_id=tenant_id, pcs_id=pcs_id, shard_id="s", epoch=1, attempt=1, signed_digest=digest,
            key_id="", body={"pcs_id": pcs_id}, d_hat=1.0, coh_star=0.5, r=0.5, budget=0.5, regime="mixed",
            recomputed_d_hat=1.0, score=None, audit_sample=False, audit_probability=0.0, status_code=200, decision="accept",
            response={"pcs_id": pcs_id, "dedup": False}, params_version=1, received_at=now, verified_at=now,
        )  # fmt: skip

    earlier = submit(signed(make_pcs())).json()["pcs_id"]
    old = PcsRecord.objects.get(pcs_id=earlier)
    batch = [record("a" * 64), record(earlier, digest="e" * 64), record("b" * 64), record("a" * 64)]
    results = store.insert_many(batch)

    new_ids = dict(PcsRecord.objects.filter(pcs_id__in=["a" * 64, "b" * 64]).values_list("pcs_id", "id"))
    assert results[0] == new_ids["a" * 64] and results[2] == new_ids["b" * 64]
    assert results[1] == store.StoredOutcome(old.id, old.status_code, old.response, old.signed_digest)
    assert results[3] is None  # the same key again: the caller reads the row the first one stored
    assert PcsRecord.objects.count() == 3
