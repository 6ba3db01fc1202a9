"""manage.py recalibrate prints each tenant's n, old and new threshold and which set decides for it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from calibration import services
from calibration.models import CalibrationSnapshot

pytestmark = pytest.mark.django_db


def label(tenant: str, scores: list[float]) -> None:
    for n, score in enumerate(scores):
        services.record_label(tenant=tenant, pcs_id=f"{tenant}-{n}", score=score, label="benign", provenance="audit")


def run(*args: str) -> str:
    out = StringIO()
    call_command("recalibrate", *args, stdout=out)
    return out.getvalue()


def test_it_reports_own_sets_and_the_global_fallback(unsigned_default_tenant):
    label("big", [i / 100 for i in range(100)])
    label("small", [0.5] * 3)
    output = run()
    assert "big: n=100 threshold none -> 0.950000 uses own set" in output
    assert "small: n=3 threshold none -> inf uses global fallback (own n < 100)" in output
    assert "global set: n=103 threshold none -> 0.950000 is the fallback of tenants with n < 100" in output
    assert (
        output.splitlines()[-1]
        == "recalibrated 3 sets at delta 0.05: 3 new snapshots stored (3 first of its set, 0 with a different threshold, 0 "
        "with the same)"
    )


def test_a_second_run_changes_nothing(unsigned_default_tenant):
    label("big", [i / 100 for i in range(100)])
    run()
    output = run()
    assert "big: n=100 threshold 0.950000 -> 0.950000 uses own set; unchanged" in output
    assert (
        output.splitlines()[-1]
        == "recalibrated 2 sets at delta 0.05: 0 new snapshots stored (0 first of its set, 0 with a different threshold, 0 "
        "with the same)"
    )
    assert CalibrationSnapshot.objects.filter(tenant="big").count() == 1


def test_a_dry_run_with_another_delta_stores_nothing(unsigned_default_tenant):
    label("big", [i / 100 for i in range(100)])
    output = run("--tenant", "big", "--delta", "0.1", "--dry-run")
    assert "big: n=100 threshold none -> 0.900000 uses own set; would store a new snapshot (no snapshot yet)" in output
    assert output.splitlines()[-1] == (
        "recalibrated 2 sets at delta 0.1: 2 new snapshots would be stored (2 first of its set, 0 with a different "
        "threshold, 0 with the same) (dry run: nothing stored)"
    )
    assert not CalibrationSnapshot.objects.exists()


def test_a_dry_run_says_when_only_the_bookkeeping_would_change(unsigned_default_tenant):
    label("small", [0.5] * 3)
    run()
    output = run("--delta", "0.1", "--dry-run")
    # Three scores give no finite threshold at either level: what would change is the snapshot's delta alone.
    assert (
        "small: n=3 threshold inf -> inf uses global fallback (own n < 100); would store a new snapshot with the "
        "same threshold (delta 0.05 -> 0.1)"
    ) in output
    assert output.splitlines()[-1] == (
        "recalibrated 2 sets at delta 0.1: 2 new snapshots would be stored (0 first of its set, 0 with a different "
        "threshold, 2 with the same) (dry run: nothing stored)"
    )
    assert CalibrationSnapshot.objects.count() == 2


def test_a_dry_run_counts_the_thresholds_it_would_move(unsigned_default_tenant):
    label("big", [i / 100 for i in range(100)])
    run()
    output = run("--tenant", "big", "--delta", "0.1", "--dry-run")
    assert "big: n=100 threshold 0.950000 -> 0.900000 uses own set; would store a new snapshot (delta 0.05 -> 0.1)" in (
        output
    )
    assert output.splitlines()[-1] == (
        "recalibrated 2 sets at delta 0.1: 2 new snapshots would be stored (0 first of its set, 2 with a different "
        "threshold, 0 with the same) (dry run: nothing stored)"
    )


def test_a_delta_outside_the_unit_interval_is_refused(unsigned_default_tenant):
    with pytest.raises(CommandError, match="--delta"):
        run("--delta", "1.5")
    assert not CalibrationSnapshot.objects.exists()


def test_a_tenant_without_labels_is_refused_and_no_snapshot_is_made_for_it(unsigned_default_tenant):
    label("acme", [0.5] * 3)
    with pytest.raises(CommandError, match=r"no labels and no snapshot for tenant 'acmee'.*tenants with labels: acme$"):
        run("--tenant", "acmee")
    assert not CalibrationSnapshot.objects.exists()
