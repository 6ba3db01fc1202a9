"""Importing the same label file twice changes nothing the second time; --tenant keeps to the tenants named."""

from __future__ import annotations

import pytest

from calibration.models import CalibrationLabel
from calibration.tests.labels_on_file import export, import_file, store_varied_labels

pytestmark = pytest.mark.django_db


def _everything() -> list[dict]:
    return list(CalibrationLabel.objects.order_by("id").values())


@pytest.mark.parametrize("name", ["labels.csv", "labels.jsonl"])
def test_the_same_file_imported_twice_changes_nothing(tmp_path, name):
    store_varied_labels()
    path = tmp_path / name
    export(path)
    CalibrationLabel.objects.filter(tenant="beta").delete()
    CalibrationLabel.objects.filter(pcs_id="a" * 64).update(label="anomalous")  # changed since the export

    assert "4 rows, 2 new, 1 updated, 1 unchanged" in import_file(path)
    after_first = _everything()
    assert "4 rows, 0 new, 0 updated, 4 unchanged" in import_file(path)
    assert _everything() == after_first


def test_the_tenant_filter_imports_only_the_tenants_named(tmp_path):
    store_varied_labels()
    path = tmp_path / "labels.jsonl"
    export(path)
    CalibrationLabel.objects.all().delete()

    assert "2 new, 0 updated, 0 unchanged, 2 of other tenants skipped" in import_file(path, "--tenant", "beta")
    assert set(CalibrationLabel.objects.values_list("tenant", flat=True)) == {"beta"}


def test_a_dry_run_counts_and_stores_nothing(tmp_path):
    store_varied_labels()
    path = tmp_path / "labels.csv"
    export(path)
    CalibrationLabel.objects.all().delete()
    assert "Would import" in import_file(path, "--dry-run")
    assert not CalibrationLabel.objects.exists()
