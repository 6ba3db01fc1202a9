"""replay_wal stores every WAL body without an outcome, as the first delivery would have, and only once."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from flk_site.testing import make_pcs, signed
from ingest import replay, wal
from ingest.models import PcsRecord


@pytest.fixture
def wal_dir(settings, tmp_path):
    settings.FLK_WAL_DIR = tmp_path / "wal"
    return settings.FLK_WAL_DIR


def kept_in_wal(pcs: dict | bytes, tenant: str = "default") -> None:
    """What the submit path leaves behind when the database fails after the WAL append."""
    data = pcs if isinstance(pcs, bytes) else json.dumps(pcs).encode()
    wal.append(tenant, data, timezone.now())


def test_replay_stores_bodies_without_outcome_and_a_resubmission_gets_the_same_answer(
    wal_dir, hmac_default_tenant, submit
):
    pending = [signed(make_pcs()) for _ in range(5)]
    for pcs in pending:
        kept_in_wal(pcs)
    assert PcsRecord.objects.count() == 0

    report = replay.replay_wal()

    assert (report.seen, report.stored, report.skipped) == (5, 5, 0)
    assert set(PcsRecord.objects.values_list("pcs_id", flat=True)) == {p["pcs_id"] for p in pending}
    again = submit(pending[0])
    assert again.status_code == 200
    assert again.json()["dedup"] is True and again.json()["decision"] == "accept"


def test_replaying_twice_changes_nothing_the_second_time(wal_dir, hmac_default_tenant):
    for _ in range(4):
        kept_in_wal(signed(make_pcs()))
    replay.replay_wal()
    rows = list(PcsRecord.objects.order_by("id").values_list("id", "pcs_id", "status_code", "verified_at"))

    second = replay.replay_wal()

    assert (second.stored, second.already_stored) == (0, 4)
    assert list(PcsRecord.objects.order_by("id").values_list("id", "pcs_id", "status_code", "verified_at")) == rows


def test_bodies_already_answered_are_left_as_they_are(wal_dir, hmac_default_tenant, submit):
    pcs = signed(make_pcs())
    first = submit(pcs)  # the request path appends to the WAL and stores the outcome
    report = replay.replay_wal()
    assert (report.seen, report.stored, report.already_stored) == (1, 0, 1)
    assert PcsRecord.objects.get().response == {**first.json(), "dedup": False}


def test_a_resubmitted_body_in_the_wal_is_stored_once(wal_dir, hmac_default_tenant):
    pcs = signed(make_pcs())
    kept_in_wal(pcs)
    kept_in_wal(pcs)
    report = replay.replay_wal(batch_size=1)  # the two copies land in different batches
    assert report.stored == 1
    assert PcsRecord.objects.filter(pcs_id=pcs["pcs_id"]).count() == 1


def test_a_body_twice_in_one_slice_is_stored_once_and_counted_as_already_stored(wal_dir, hmac_default_tenant):
    pcs = signed(make_pcs())
    others = [signed(make_pcs()) for _ in range(3)]
    for body in (pcs, others[0], pcs, others[1], others[2]):
        kept_in_wal(body)
    report = replay.replay_wal(batch_size=1000, workers=1)  # one slice, one multi-row statement
    assert (report.stored, report.already_stored, report.skipped) == (4, 1, 0)
    assert PcsRecord.objects.filter(pcs_id=pcs["pcs_id"]).count() == 1
    assert PcsRecord.objects.count() == 4


def test_bodies_whose_pcs_id_has_an_outcome_are_not_stored_again(wal_dir, hmac_default_tenant, submit):
    stored = [signed(make_pcs()) for _ in range(2)]
    answers = [submit(pcs).json() for pcs in stored]  # stored before the crash (and kept in the WAL too)
    changed = signed(dict(stored[0], coh_star=0.75, budget=0.289))  # same pcs_id, another signed subset
    new = [signed(make_pcs()) for _ in range(3)]
    for body in (new[0], stored[0], new[1], changed, stored[1], new[2]):
        kept_in_wal(body)
    report = replay.replay_wal(batch_size=1000, workers=1)
    # 8 records: the 2 the request path kept, their 2 copies and the changed body (its pcs_id has an
    # outcome, which a resubmission of it would get as a 409), and the 3 new ones.
    assert (report.seen, report.stored, report.already_stored, report.skipped) == (8, 3, 5, 0)
    assert PcsRecord.objects.count() == 5
    for pcs, answer in zip(stored, answers, strict=True):
        assert PcsRecord.objects.get(pcs_id=pcs["pcs_id"]).response == answer


def test_bodies_that_fail_schema_or_signature_are_skipped_and_counted(wal_dir, hmac_default_tenant):
    kept_in_wal(b"not json at all\n")
    kept_in_wal({**make_pcs(), "D_hat": "high"})
    kept_in_wal(signed(make_pcs(), key=b"wrong key"))
    kept_in_wal(signed(make_pcs()), tenant="nobody")
    kept_in_wal(signed(make_pcs()))

    report = replay.replay_wal()

    assert (report.stored, report.skipped) == (1, 4)
    assert report.skipped_by_reason == {"unparsable": 1, "http_400": 1, "http_401": 1, "unknown_tenant": 1}
    assert PcsRecord.objects.count() == 1


def test_a_body_nested_past_the_json_parsers_depth_is_skipped_and_does_not_stop_the_replay(
    wal_dir, hmac_default_tenant
):
    """The WAL keeps whatever a client sent before it is parsed, so one such body must not halt every replay."""
    kept_in_wal(b"[" * 30_000 + b"]" * 30_000)
    kept_in_wal(json.dumps(signed(make_pcs()))[:-1].encode() + b', "note": ' + b'{"a":' * 5000 + b"1" + b"}" * 5001)
    good = signed(make_pcs())
    kept_in_wal(good)

    report = replay.replay_wal()

    assert (report.seen, report.stored, report.skipped) == (3, 1, 2)
    assert report.skipped_by_reason == {"unparsable": 2}
    assert list(PcsRecord.objects.values_list("pcs_id", flat=True)) == [good["pcs_id"]]


@pytest.mark.django_db(transaction=True)
def test_a_body_the_database_refuses_is_skipped_and_the_rest_of_its_slice_stored(wal_dir, hmac_default_tenant):
    """1e400 passes the schema (an unchecked field) but is not JSON to PostgreSQL once it is infinity."""
    good = [signed(make_pcs()) for _ in range(3)]
    kept_in_wal(good[0])
    kept_in_wal(json.dumps(signed(make_pcs()))[:-1].encode() + b', "note": 1e400}')
    kept_in_wal(good[1])
    kept_in_wal(good[2])

    report = replay.replay_wal()

    assert (report.stored, report.skipped) == (3, 1)
    assert report.skipped_by_reason == {"http_400": 1}
    assert set(PcsRecord.objects.values_list("pcs_id", flat=True)) == {p["pcs_id"] for p in good}


def test_the_command_prints_a_summary_line(wal_dir, hmac_default_tenant):
    kept_in_wal(signed(make_pcs()))
    kept_in_wal(b"{")
    out = io.StringIO()
    call_command("replay_wal", stdout=out)
    assert "2 records read, 1 stored, 0 already stored, 1 skipped (unparsable=1)" in out.getvalue()


def test_the_celery_task_replays_the_same_way(wal_dir, hmac_default_tenant):
    from ingest.tasks import replay_wal

    kept_in_wal(signed(make_pcs()))
    assert replay_wal.apply().get()["stored"] == 1
    assert replay_wal.apply().get()["stored"] == 0


def test_a_large_backlog_is_stored_once_by_parallel_slices(transactional_db, wal_dir, hmac_default_tenant):
    pending = [signed(make_pcs()) for _ in range(60)]
    for pcs in pending:
        kept_in_wal(pcs)
    kept_in_wal(pending[0])  # a client's retry, kept too

    first = replay.replay_wal(batch_size=25, workers=3)
    second = replay.replay_wal(batch_size=25, workers=3)

    assert (first.seen, first.stored, first.already_stored) == (61, 60, 1)
    assert (second.stored, second.already_stored) == (0, 61)
    assert sorted(PcsRecord.objects.values_list("pcs_id", flat=True)) == sorted(p["pcs_id"] for p in pending)


def test_a_wal_directory_that_does_not_exist_is_an_error_not_an_empty_replay(wal_dir, hmac_default_tenant, tmp_path):
    kept_in_wal(signed(make_pcs()))
    for wrong in (tmp_path / "no-such-dir", tmp_path / "a-file"):
        if wrong.name == "a-file":
            wrong.write_text("")
        with pytest.raises(CommandError, match=f"--dir {wrong} is not a directory"):
            call_command("replay_wal", "--dir", str(wrong), stdout=io.StringIO())
    assert not PcsRecord.objects.exists()
    out = io.StringIO()
    call_command("replay_wal", "--dir", str(wal_dir), stdout=out)
    assert out.getvalue().startswith(f"replay_wal: {wal_dir}: 1 records read, 1 stored")
