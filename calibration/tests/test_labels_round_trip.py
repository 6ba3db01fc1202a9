"""export_labels then import_labels into an empty database reproduces every label, in CSV and in JSON Lines."""

from __future__ import annotations

import pytest

from calibration.models import CalibrationLabel
from calibration.tests.labels_on_file import export, import_file, store_varied_labels, stored_labels

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["labels.csv", "labels.jsonl"])
def test_a_round_trip_through_an_empty_database_reproduces_the_labels(
    tmp_path, name, django_capture_on_commit_callbacks
):
    store_varied_labels()
    before = stored_labels()
    path = tmp_path / name
    assert "Exported 4 labels" in export(path)
    CalibrationLabel.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=False) as recalibrations:
        summary = import_file(path)

    assert "4 rows, 4 new, 0 updated, 0 unchanged; 0 downgraded" in summary
    assert stored_labels() == before
    audit = CalibrationLabel.objects.get(pcs_id="a" * 64)
    assert audit.origin.startswith(f"import:{name}@") and audit.origin.endswith("; review:alice")
    assert len(recalibrations) == 2  # one recalibration scheduled per tenant


def test_export_writes_every_field_and_can_keep_to_one_tenant(tmp_path):
    store_varied_labels()
    path = tmp_path / "acme.csv"
    assert "Exported 2 labels of acme" in export(path, "--tenant", "acme")
    header, *rows = path.read_text().splitlines()
    assert header == (
        "tenant,pcs_id,score,formula_key,signals,label,provenance,inclusion_probability,decision,p_value,flagged,"
        "snapshot_n,delta,received_at,origin,labelled_at"
    )
    assert len(rows) == 2 and all(row.startswith("acme,") for row in rows)
    assert '"{""D_hat"": 1.25, ""coh_star"": 0.81, ""r"": 0.47}"' in rows[0]
