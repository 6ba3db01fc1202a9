"""One bad row and import_labels stores nothing; its errors name the line and the field."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from calibration.models import CalibrationLabel
from calibration.tests.labels_on_file import export, import_file, store_varied_labels, stored_labels

pytestmark = pytest.mark.django_db


def test_a_bad_row_among_good_ones_changes_nothing(tmp_path):
    store_varied_labels()
    path = tmp_path / "labels.csv"
    export(path)
    CalibrationLabel.objects.filter(tenant="beta").delete()
    before = stored_labels()
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(",benign,", ",benign-ish,")  # line 2: the first label
    lines[3] = lines[3].replace("+00:00", "", 1)  # line 4: a time without its UTC offset
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(CommandError) as error:
        import_file(path)

    message = str(error.value)
    assert "2 problem(s), nothing imported" in message
    assert "line 2, field label: must be one of 'benign', 'anomalous', got 'benign-ish'" in message
    assert "line 4, field " in message and "needs its UTC offset" in message
    assert stored_labels() == before


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"tenant": "acme", "pcs_id": "x", "label": "benign", "labelled_at": "2026-11-30T12:00:00+00:00", '
         '"score": "0.5"}', "line 2, field score: must be a number"),
        ('{"tenant": "acme", "pcs_id": "x", "label": "benign", "labelled_at": "2026-11-30T12:00:00+00:00", '
         '"signals": {"D_hat": 1.0}}', "line 2, field signals: must be a JSON object with exactly D_hat, coh_star, r"),
        ('{"tenant": "", "pcs_id": "x", "label": "benign", "labelled_at": "2026-11-30T12:00:00+00:00"}',
         "line 2, field tenant: required"),
        ('{"tenant": "acme", "pcs_id": "x", "label": "benign"}', "line 2, field labelled_at: required"),
        ('{"tenant": "acme", "pcs_id": "x", "label": "benign", "labelled_at": "2026-11-30T12:00:00+00:00", '
         '"colour": "red"}', "line 2, field colour: unknown field"),
        ('{"tenant": "acme", "pcs_id": "ok", "label": "benign", "labelled_at": "2026-11-30T12:00:00+00:00"}',
         "line 2, field pcs_id: 'ok' of tenant 'acme' is on line 1 too"),
        ("not json", "line 2: not JSON"),
    ],
)  # fmt: skip
def test_each_bad_value_is_named_by_line_and_field(tmp_path, line, problem):
    path = tmp_path / "labels.jsonl"
    good = '{"tenant": "acme", "pcs_id": "ok", "label": "benign", "labelled_at": "2026-11-30T12:00:00+00:00"}'
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(CommandError, match="nothing imported") as error:
        import_file(path)
    assert problem in str(error.value)
    assert not CalibrationLabel.objects.exists()


def test_a_csv_file_with_an_unknown_column_is_refused(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("tenant,pcs_id,label,labelled_at,colour\nacme,x,benign,2026-11-30T12:00:00+00:00,red\n")
    with pytest.raises(CommandError, match="line 1, field colour: unknown column"):
        import_file(path)
    assert not CalibrationLabel.objects.exists()
