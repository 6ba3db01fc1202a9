"""WAL retention deletes old segments, never one holding a body without a stored outcome; the dedup TTL purge."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from flk_site.testing import make_pcs, signed
from ingest import replay, wal
from ingest.models import PcsRecord
from policy.models import VerifyParams


@pytest.fixture
def wal_dir(settings, tmp_path):
    settings.FLK_WAL_DIR = tmp_path / "wal"
    settings.FLK_WAL_RETENTION_DAYS = 14
    return settings.FLK_WAL_DIR


def age_days(path, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def segment_with(pcs_list) -> str:
    """A closed segment holding these bodies, PCS or raw bytes (a fresh writer, as another process would have
    left it)."""
    writer = wal.WalWriter(settings.FLK_WAL_DIR, 10**9, 3600)
    for pcs in pcs_list:
        body = pcs if isinstance(pcs, bytes) else json.dumps(pcs).encode()
        writer.append(wal.encode_record("default", body, timezone.now()))
    name = writer.active_segment()
    writer.close()
    return name


def test_old_segments_whose_bodies_are_all_stored_are_deleted(wal_dir, hmac_default_tenant, submit):
    pcs = signed(make_pcs())
    submit(pcs)  # stored, its body in this process's segment
    (segment,) = wal.segments()
    age_days(segment, 15)
    wal.close_writers()  # as if the process that wrote it had exited

    report = replay.purge_wal_segments()

    assert report.deleted == [segment.name] and wal.segments() == []


def test_an_old_segment_holding_an_unstored_body_is_kept(wal_dir, hmac_default_tenant):
    name = segment_with([signed(make_pcs())])
    age_days(wal_dir / name, 30)

    report = replay.purge_wal_segments()

    assert report.kept_unstored == [name] and (wal_dir / name).exists()
    replay.replay_wal()
    assert replay.purge_wal_segments().deleted == [name]


@pytest.mark.django_db(transaction=True)  # the database refuses a row: replay's transaction must be its own
def test_an_old_segment_whose_unstored_bodies_the_verifier_refuses_is_deleted(wal_dir, hmac_default_tenant):
    """A body refused for its schema or signature never gets an outcome: it must not keep its segment for good."""
    refused = [
        signed(make_pcs(), key=b"not the tenant's key"),
        {**signed(make_pcs()), "D_hat": "high"},
        json.dumps(signed(make_pcs()))[:-1].encode() + b', "note": 1e400}',  # infinity: the database refuses it
    ]
    name = segment_with(refused)
    age_days(wal_dir / name, 30)
    report = replay.replay_wal()
    assert (report.stored, report.skipped) == (0, 3)  # replay skips them, run after run

    assert replay.purge_wal_segments().deleted == [name]


def test_an_old_segment_with_one_storable_body_among_refused_ones_is_kept(wal_dir, hmac_default_tenant):
    storable = signed(make_pcs())
    name = segment_with([signed(make_pcs(), key=b"not the tenant's key"), storable])
    age_days(wal_dir / name, 30)

    assert replay.purge_wal_segments().kept_unstored == [name]
    assert replay.replay_wal().stored == 1
    assert replay.purge_wal_segments().deleted == [name]


def test_recent_segments_are_kept(wal_dir, hmac_default_tenant, submit):
    submit(signed(make_pcs()))
    (segment,) = wal.segments()
    age_days(segment, 13)
    wal.close_writers()
    assert replay.purge_wal_segments().deleted == []
    assert segment.exists()


def test_outcomes_older_than_the_dedup_ttl_are_purged_and_a_resubmission_is_verified_afresh(
    hmac_default_tenant, wal_dir, submit
):
    VerifyParams.objects.filter(is_active=True).update(dedup_ttl_days=7, audit_rate=0.0, bootstrap_audit_rate=0.0)
    old, recent = signed(make_pcs()), signed(make_pcs())
    submit(old)
    submit(recent)
    PcsRecord.objects.filter(pcs_id=old["pcs_id"]).update(received_at=timezone.now() - timedelta(days=8))

    assert replay.purge_expired_outcomes() == 1

    assert list(PcsRecord.objects.values_list("pcs_id", flat=True)) == [recent["pcs_id"]]
    assert submit(old).json()["dedup"] is False


def test_an_audit_sample_outlives_the_ttl_until_it_is_labelled_or_expired(hmac_default_tenant, wal_dir, submit):
    from calibration import services as calibration
    from calibration.models import ExpiredAudit

    VerifyParams.objects.filter(is_active=True).update(dedup_ttl_days=7, audit_rate=1.0, bootstrap_audit_rate=1.0)
    labelled, expired, waiting = (signed(make_pcs()) for _ in range(3))
    for pcs in (labelled, expired, waiting):
        submit(pcs)
    PcsRecord.objects.update(received_at=timezone.now() - timedelta(days=8))
    assert PcsRecord.objects.filter(audit_sample=True).count() == 3

    assert replay.purge_expired_outcomes() == 0  # nobody labelled them yet: an audit label is not lost

    calibration.record_label(tenant="default", pcs_id=labelled["pcs_id"], label="benign", provenance="audit",
                             signals={"D_hat": 1.0, "coh_star": 0.8, "r": 0.5})  # fmt: skip
    ExpiredAudit.objects.create(tenant="default", pcs_id=expired["pcs_id"], reason="test")
    assert replay.purge_expired_outcomes() == 2
    assert list(PcsRecord.objects.values_list("pcs_id", flat=True)) == [waiting["pcs_id"]]
