"""When the WAL cannot be written, the service answers 503 + Retry-After and accepts nothing."""

from __future__ import annotations

import pytest

from flk_site.testing import make_pcs, signed
from ingest import wal
from ingest.models import PcsRecord


@pytest.fixture
def unwritable_wal(settings, tmp_path):
    # The test runs as root, for whom permission bits do not stop writes: a WAL "directory" below a regular
    # file fails every create with an OSError (ENOTDIR), like a read-only or vanished mount.
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    settings.FLK_WAL_DIR = blocker / "wal"
    return settings.FLK_WAL_DIR


def test_an_unwritable_wal_gives_503_with_retry_after_and_nothing_is_stored(
    unwritable_wal, hmac_default_tenant, submit
):
    pcs = signed(make_pcs())
    response = submit(pcs)
    assert response.status_code == 503
    assert response["Retry-After"].isdigit() and int(response["Retry-After"]) >= 1
    assert response.json()["code"] == "wal_unavailable"
    assert not PcsRecord.objects.filter(pcs_id=pcs["pcs_id"]).exists()


def test_the_same_pcs_is_accepted_once_the_wal_is_writable_again(
    unwritable_wal, hmac_default_tenant, submit, settings, tmp_path
):
    pcs = signed(make_pcs())
    assert submit(pcs).status_code == 503
    settings.FLK_WAL_DIR = tmp_path / "wal"
    again = submit(pcs)
    assert again.status_code == 200 and again.json()["dedup"] is False


def test_check_writable_reports_the_problem(unwritable_wal, tmp_path):
    with pytest.raises(wal.WalUnavailable):
        wal.check_writable()
    wal.check_writable(tmp_path / "fine")  # no exception for a writable directory
