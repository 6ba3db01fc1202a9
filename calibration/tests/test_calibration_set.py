"""Which labels form a tenant's quantile: benign audit samples, newest first, within the window and size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calibration import services
from calibration.models import GLOBAL_SET, CalibrationSnapshot
from calibration.scoring import ScoreFormula

pytestmark = pytest.mark.django_db


def scores_of(tenant: str) -> list[float]:
    services.recalibrate_tenant(tenant, delta=0.05, n_min=100, params_version=1)
    return CalibrationSnapshot.objects.filter(tenant=tenant).latest("id").scores


def add(tenant, pcs_id, score, label="benign", provenance="audit", **kwargs):
    services.record_label(tenant=tenant, pcs_id=pcs_id, score=score, label=label, provenance=provenance, **kwargs)


def test_only_benign_audit_samples_form_the_quantile_by_default():
    add("acme", "a", 0.1)
    add("acme", "b", 0.2, label="anomalous")
    add("acme", "c", 0.3, provenance="escalation")
    add("acme", "d", None)  # stored without a score: cannot be calibrated on
    assert scores_of("acme") == [0.1]


def test_benign_labels_of_escalated_pcs_never_enter_the_quantile():
    add("acme", "a", 0.1)
    add("acme", "c", 0.3, provenance="escalation")
    add("acme", "i", 0.4, provenance="imported")
    assert scores_of("acme") == [0.1]
    assert scores_of(GLOBAL_SET) == [0.1]


SIGNALS = {"D_hat": 1.2, "coh_star": 0.8, "r": 0.5}


def test_a_label_with_signals_is_rescored_under_the_formula_of_each_recalibration():
    add("acme", "a", None, signals=SIGNALS)
    old, new = ScoreFormula(), ScoreFormula(r0=0.55)
    services.recalibrate_tenant("acme", delta=0.05, n_min=100, params_version=1, formula=old)
    first = CalibrationSnapshot.objects.filter(tenant="acme").latest("id")
    services.recalibrate_tenant("acme", delta=0.05, n_min=100, params_version=2, formula=new)
    second = CalibrationSnapshot.objects.filter(tenant="acme").latest("id")
    assert first.scores == [old.score(SIGNALS)] and second.scores == [new.score(SIGNALS)]
    assert old.score(SIGNALS) != new.score(SIGNALS)
    assert (first.formula_key, second.formula_key) == (old.key, new.key)
    assert ScoreFormula.from_dict(second.formula) == new


def test_a_label_without_signals_is_left_out_once_the_formula_changes():
    add("acme", "scored", 0.3)  # scored under the active (default) formula, no signals kept
    add("acme", "rescorable", None, signals=SIGNALS)
    result = services.recalibrate_tenant("acme", delta=0.05, n_min=100, params_version=2, formula=ScoreFormula(r0=0.5))
    row = CalibrationSnapshot.objects.get(pk=result.snapshot_id)
    assert row.scores == [ScoreFormula(r0=0.5).score(SIGNALS)]
    assert (result.skipped, row.skipped) == (1, 1)
    assert scores_of("acme") == sorted([0.3, ScoreFormula().score(SIGNALS)])  # under its own formula it counts


def test_the_oldest_labels_leave_first_when_the_set_is_full(settings):
    settings.FLK_CALIBRATION_MAX_SIZE = 3
    now = timezone.now()
    for n in range(5):
        add("acme", f"p{n}", n / 10, labelled_at=now - timedelta(hours=10 - n))
    assert scores_of("acme") == [0.2, 0.3, 0.4]


def test_labels_older_than_the_window_are_left_out(settings):
    settings.FLK_CALIBRATION_WINDOW_DAYS = 30
    add("acme", "old", 0.9, labelled_at=timezone.now() - timedelta(days=31))
    add("acme", "new", 0.1)
    assert scores_of("acme") == [0.1]


def test_a_snapshot_records_what_it_was_built_from():
    add("acme", "a", 0.1)
    result = services.recalibrate_tenant("acme", delta=0.1, n_min=100, params_version=7)
    row = CalibrationSnapshot.objects.filter(tenant="acme").latest("id")
    assert (row.n, row.delta, row.params_version, row.pk) == (1, 0.1, 7, result.snapshot_id)
    assert len(row.content_hash) == 64
    assert row.threshold is None  # infinite with one score
