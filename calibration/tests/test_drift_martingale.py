"""The drift martingale alarms on at most `level` of stationary streams, catches a shift, and is held then restarted.

Simulations run the pure functions over streams of benign scores; the service tests run the hourly look over
labels stored in PostgreSQL.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration import services
from calibration.models import DriftReport
from calibration.monitors import drift_path, online_conformal_p_values, simple_jumper, smoothing_draw

LEVEL = 0.01


def false_alarms(rng, *, runs: int, length: int, level: float, ties: bool = False) -> int:
    alarms = 0
    for _ in range(runs):
        scores = rng.normal(size=length)
        if ties:
            scores = np.round(scores, 1)  # about 60 distinct values: ties everywhere
        alarms += drift_path(scores, rng.random(length), level=level).alarm_index is not None
    return alarms


@pytest.mark.parametrize(("level", "ties"), [(0.01, False), (0.05, False), (0.05, True)])
def test_on_stationary_streams_at_most_level_of_them_ever_alarm(level, ties):
    runs = 1000
    alarms = false_alarms(np.random.default_rng(11), runs=runs, length=1000, level=level, ties=ties)
    assert alarms / runs <= level + 3 * math.sqrt(level * (1 - level) / runs), alarms / runs


@pytest.mark.parametrize(("shift", "caught_at_least", "median_delay"), [(1.0, 1.0, 80), (0.5, 0.97, 250)])
def test_a_shift_of_the_benign_scores_is_caught(shift, caught_at_least, median_delay):
    # The online p-values compare each score with every earlier one, the new regime included: a martingale that
    # has not caught a small shift early may never catch it, so a small shift is caught in most streams, not all.
    rng = np.random.default_rng(12)
    delays = []
    for _ in range(100):
        scores = np.concatenate([rng.normal(size=300), rng.normal(loc=shift, size=1500)])
        alarm = drift_path(scores, rng.random(scores.size), level=LEVEL).alarm_index
        if alarm is not None:
            assert alarm >= 300 - 20  # not before the shift (bar a rare early alarm)
            delays.append(alarm - 300)
    assert len(delays) >= caught_at_least * 100
    assert np.median(delays) <= median_delay


def test_a_shift_downwards_is_caught_too():
    rng = np.random.default_rng(13)
    scores = np.concatenate([rng.normal(size=300), rng.normal(loc=-1.0, size=600)])
    assert drift_path(scores, rng.random(scores.size), level=LEVEL).alarm_index is not None


@given(st.lists(st.integers(0, 5), min_size=1, max_size=60), st.integers(0, 2**32 - 1))
def test_online_p_values_are_ranks_among_the_past(scores, seed):
    draws = np.random.default_rng(seed).random(len(scores))
    p = online_conformal_p_values(scores, draws)
    for i, s in enumerate(scores):
        past = scores[: i + 1]
        greater = sum(x > s for x in past)
        equal = sum(x == s for x in past)
        assert p[i] == pytest.approx((greater + draws[i] * equal) / (i + 1))
        assert 0.0 < p[i] <= 1.0


def test_the_martingale_does_not_move_on_p_values_of_one_half():
    assert np.allclose(simple_jumper([0.5] * 100), 1.0)


def test_the_smoothing_draw_is_uniform_and_repeatable():
    draws = np.array([smoothing_draw("acme", f"pcs-{i}") for i in range(20000)])
    assert smoothing_draw("acme", "pcs-1") == draws[1]
    assert 0.0 < draws.min() and draws.max() < 1.0
    assert abs(draws.mean() - 0.5) < 0.01
    assert np.histogram(draws, bins=10, range=(0, 1))[0].min() > 1800


# --- The hourly look over stored labels -------------------------------------------------------------------------


def stored_stream(tenant: str, scores, *, start: int = 0, base=None):
    from django.utils import timezone

    base = base or timezone.now() - timedelta(days=2)
    for i, score in enumerate(scores, start):
        services.record_label(
            tenant=tenant, pcs_id=f"{tenant}-{i}", score=float(score), label="benign", provenance="audit",
            labelled_at=base + timedelta(minutes=i),
        )  # fmt: skip


@pytest.mark.django_db
def test_an_alarm_is_held_then_the_stream_restarts_after_it(unsigned_default_tenant, settings):
    from django.utils import timezone

    settings.FLK_DRIFT_HOLD_HOURS = 24
    rng = np.random.default_rng(14)
    stored_stream("acme", np.concatenate([rng.uniform(0.0, 0.3, 150), rng.uniform(0.2, 0.5, 250)]))
    now = timezone.now()
    first = services.check_drift_tenant("acme", level=LEVEL, now=now)
    assert first.drift_detected and first.stream_start is None
    held = services.check_drift_tenant("acme", level=LEVEL, now=now + timedelta(hours=1))
    assert held.drift_detected and held.alarm_at == first.alarm_at  # still raised an hour later
    DriftReport.objects.filter(pk=first.pk).update(created_at=now - timedelta(hours=25))
    restarted = services.check_drift_tenant("acme", level=LEVEL, now=now)
    assert restarted.stream_start == first.alarm_at
    assert restarted.n_labels < first.n_labels
    assert not restarted.drift_detected  # the new regime is stationary


@pytest.mark.django_db
def test_the_stream_is_rescored_under_the_active_formula(unsigned_default_tenant):
    from calibration.scoring import ScoreFormula

    rng = np.random.default_rng(15)
    for i in range(120):
        signals = {"D_hat": float(rng.uniform(1.5, 2.5)), "coh_star": float(rng.uniform(0.7, 0.95)),
                   "r": float(rng.uniform(0.55, 0.75))}  # fmt: skip
        services.record_label(tenant="acme", pcs_id=f"s{i}", signals=signals, label="benign", provenance="audit")
    formula = ScoreFormula(r0=0.55)
    report = services.check_drift_tenant("acme", level=LEVEL, formula=formula)
    assert report.formula_key == formula.key and report.n_labels == 120
    scores, _draws, _times = services.drift_stream("acme", start=None, formula=formula)
    assert scores[0] == formula.score(services.CalibrationLabel.objects.get(pcs_id="s0").signals)


@pytest.mark.django_db
def test_a_score_fitted_per_tenant_scores_the_stream_with_the_tenants_fit_without_its_fit_fold(
    unsigned_default_tenant,
):
    from calibration.models import CalibrationSnapshot
    from calibration.scoring import ScoreFormula, in_fit_fold

    rng = np.random.default_rng(16)
    ids = [f"f{i}" for i in range(300)]
    for pcs_id in ids:
        signals = {"D_hat": float(rng.normal(0.8, 0.1)), "coh_star": float(rng.normal(0.45, 0.05)),
                   "r": float(rng.normal(0.45, 0.03))}  # fmt: skip
        services.record_label(tenant="acme", pcs_id=pcs_id, signals=signals, label="benign", provenance="audit")
    spec = ScoreFormula(kind="centred")
    services.recalibrate_tenant("acme", delta=0.05, n_min=100, params_version=1, formula=spec)
    fitted = ScoreFormula.from_dict(CalibrationSnapshot.objects.get(tenant="acme").formula)
    report = services.check_drift_tenant("acme", level=LEVEL, formula=spec)
    assert report.formula_key == fitted.key
    assert report.n_labels == sum(not in_fit_fold(pcs_id) for pcs_id in ids) < len(ids)
