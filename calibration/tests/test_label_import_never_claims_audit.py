"""An imported row keeps provenance "audit" only with an inclusion probability in (0, 1]; else it is "imported"."""

from __future__ import annotations

import json

import pytest

from calibration import services
from calibration.models import GLOBAL_SET, CalibrationLabel
from calibration.tests.labels_on_file import SIGNALS, import_file

pytestmark = pytest.mark.django_db


def _row(pcs_id: str, **fields) -> str:
    row = {"tenant": "acme", "pcs_id": pcs_id, "label": "benign", "provenance": "audit", "signals": SIGNALS,
           "labelled_at": "2026-11-30T12:00:00+00:00", **fields}  # fmt: skip
    return json.dumps(row)


def test_audit_claims_without_a_known_draw_are_downgraded_and_counted(tmp_path):
    path = tmp_path / "from-elsewhere.jsonl"
    rows = [
        _row("drawn", inclusion_probability=0.02),
        _row("certain", inclusion_probability=1.0),
        _row("no-probability"),
        _row("zero", inclusion_probability=0),
        _row("above-one", inclusion_probability=1.5),
        _row("escalated", provenance="escalation"),
        _row("unknown-provenance", provenance="spreadsheet", inclusion_probability=0.5),
        _row("no-provenance", provenance=""),
    ]
    path.write_text("\n".join(rows) + "\n")

    summary = import_file(path)

    assert "8 rows, 8 new" in summary and "3 downgraded from audit to imported" in summary
    provenance = dict(CalibrationLabel.objects.values_list("pcs_id", "provenance"))
    assert provenance == {
        "drawn": "audit", "certain": "audit", "no-probability": "imported", "zero": "imported",
        "above-one": "imported", "escalated": "escalation", "unknown-provenance": "imported",
        "no-provenance": "imported",
    }  # fmt: skip
    assert CalibrationLabel.objects.get(pcs_id="above-one").inclusion_probability is None


def test_downgraded_labels_never_enter_a_quantile(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(_row(f"pcs-{i}") for i in range(30)) + "\n" + _row("drawn", inclusion_probability=0.5))
    import_file(path)
    assert [pcs_id for _t, pcs_id, *_ in services.calibration_labels("acme")] == ["drawn"]
    assert len(services.calibration_labels(GLOBAL_SET)) == 1
