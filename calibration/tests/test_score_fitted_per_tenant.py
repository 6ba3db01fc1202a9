"""A score centred and weighted per tenant on labels that never calibrate it, and the guarantee that still holds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from calibration import services
from calibration.conformal import conformal_threshold
from calibration.models import CalibrationSnapshot
from calibration.scoring import (
    CENTRED,
    FITTED,
    MIN_FIT_BENIGN,
    REFERENCE,
    ScoreFormula,
    fit_formula,
    in_fit_fold,
)


def benign_signals(rng: np.random.Generator, size: int) -> list[dict[str, float]]:
    return [
        {"D_hat": float(d), "coh_star": float(c), "r": float(r)}
        for d, c, r in np.c_[rng.normal(0.9, 0.1, size), rng.normal(0.45, 0.05, size), rng.normal(0.47, 0.03, size)]
    ]


def repetitive_signals(rng: np.random.Generator, size: int) -> list[dict[str, float]]:
    """Anomalies that only r sees (repetition): D̂ and coh★ as the benign ones."""
    return [
        {"D_hat": float(d), "coh_star": float(c), "r": float(r)}
        for d, c, r in np.c_[rng.normal(0.9, 0.1, size), rng.normal(0.45, 0.05, size), rng.normal(0.25, 0.05, size)]
    ]


def test_the_reference_formula_keeps_its_key_and_its_fields():
    # Labels and snapshots stored before score kinds existed name the reference formula by this key.
    assert ScoreFormula().as_dict() == {"w_d": 0.35, "w_coh": 0.40, "w_r": 0.25, "r0": 0.65, "tol_coh": 0.05}
    assert ScoreFormula.from_dict(ScoreFormula().as_dict()) == ScoreFormula()
    assert fit_formula(ScoreFormula(), benign_signals(np.random.default_rng(0), 100)) == ScoreFormula()


def test_a_fitted_formula_round_trips_through_its_dict_and_a_new_fit_has_a_new_key():
    spec = ScoreFormula(kind=FITTED)
    fitted = fit_formula(spec, benign_signals(np.random.default_rng(1), 200))
    assert ScoreFormula.from_dict(fitted.as_dict()) == fitted
    assert fitted.key != spec.key


def test_the_centre_and_spread_are_the_tenants_own():
    fitted = fit_formula(ScoreFormula(kind=CENTRED), benign_signals(np.random.default_rng(2), 2000))
    assert fitted.c_r == pytest.approx(0.47, abs=0.005) and fitted.s_r == pytest.approx(0.03, abs=0.004)
    assert fitted.c_d == pytest.approx(0.9, abs=0.01) and fitted.s_d == pytest.approx(0.1, abs=0.01)
    # centred keeps the global weights whatever the anomalous labels say
    assert (fitted.w_d, fitted.w_coh, fitted.w_r) == (0.35, 0.40, 0.25)


def test_too_few_fit_labels_keep_the_formulas_own_references():
    spec = ScoreFormula(kind=FITTED)
    assert fit_formula(spec, benign_signals(np.random.default_rng(3), MIN_FIT_BENIGN - 1)) == spec


def test_fitted_weights_go_to_the_signal_that_separates_the_tenants_anomalies():
    rng = np.random.default_rng(4)
    fitted = fit_formula(ScoreFormula(kind=FITTED), benign_signals(rng, 300), repetitive_signals(rng, 300))
    assert fitted.w_r > 0.6 and fitted.w_r > fitted.w_d + fitted.w_coh
    assert fitted.w_d + fitted.w_coh + fitted.w_r == pytest.approx(1.0)


def test_each_signal_counts_against_a_pcs_on_either_side_of_the_tenants_centre():
    fitted = fit_formula(ScoreFormula(kind=CENTRED), benign_signals(np.random.default_rng(5), 500))
    centre = {"D_hat": fitted.c_d, "coh_star": fitted.c_coh, "r": fitted.c_r}
    assert fitted.score(centre) == 0.0
    for name, step in (("D_hat", 0.2), ("coh_star", 0.1), ("r", 0.1)):
        above, below = (
            fitted.score({**centre, name: centre[name] + step}),
            fitted.score({**centre, name: centre[name] - step}),
        )
        assert above == pytest.approx(below, abs=1e-6) and above > 0


def test_with_fitted_weights_a_benign_pcs_is_escalated_at_most_delta_of_the_time():
    # Split conformal with a fitted score: per trial, labels with hashed ids; the fit fold and the anomalous
    # labels fit the formula, the other benign labels calibrate it, fresh benign PCS are tested.
    rng = np.random.default_rng(6)
    delta, n, trials, fresh = 0.1, 150, 300, 200
    escalated, caught = [], []
    for trial in range(trials):
        labels = benign_signals(rng, n)
        ids = [f"{trial}-{k}" for k in range(n)]
        fit = [s for s, pcs_id in zip(labels, ids, strict=True) if in_fit_fold(pcs_id)]
        calibration = [s for s, pcs_id in zip(labels, ids, strict=True) if not in_fit_fold(pcs_id)]
        formula = fit_formula(ScoreFormula(kind=FITTED), fit, repetitive_signals(rng, 30))
        threshold = conformal_threshold(sorted(formula.score(s) for s in calibration), delta)
        escalated.append(np.mean([formula.score(s) > threshold for s in benign_signals(rng, fresh)]))
        caught.append(np.mean([formula.score(s) > threshold for s in repetitive_signals(rng, fresh)]))
    rate = float(np.mean(escalated))
    # E[rate] ≤ delta exactly; its standard error over 300 trials is about 0.002, so 0.01 is 5 of them.
    assert rate <= delta + 0.01
    assert rate >= delta - 1 / (0.8 * n + 1) - 0.01  # and not far below: the bound is tight
    assert np.mean(caught) > 0.9  # the fitted weights found r


def incoherent_signals(rng: np.random.Generator, size: int) -> list[dict[str, float]]:
    """Anomalies on the other side of the centre: higher D̂ and r, lower coh★ (text with no structure at all)."""
    return [
        {"D_hat": float(d), "coh_star": float(c), "r": float(r)}
        for d, c, r in np.c_[rng.normal(1.2, 0.1, size), rng.normal(0.33, 0.05, size), rng.normal(0.55, 0.03, size)]
    ]


def test_a_fitted_formula_counts_the_side_of_the_centre_its_tenants_anomalies_are_on():
    rng = np.random.default_rng(10)
    fitted = fit_formula(ScoreFormula(kind=FITTED), benign_signals(rng, 300), repetitive_signals(rng, 300))
    assert fitted.lo_r > 0.9  # repetition lowers r: the low side carries r's weight
    centre = {"D_hat": fitted.c_d, "coh_star": fitted.c_coh, "r": fitted.c_r}
    below = fitted.score({**centre, "r": fitted.c_r - 0.1})
    above = fitted.score({**centre, "r": fitted.c_r + 0.1})
    assert below > 5 * above > 0  # as far above the centre counts far less than below it
    # A tenant whose anomalies are incoherent text gets the other sides.
    other = fit_formula(ScoreFormula(kind=FITTED), benign_signals(rng, 300), incoherent_signals(rng, 300))
    assert other.lo_r < 0.1 and other.lo_d < 0.1 and other.lo_coh > 0.9


def test_one_sided_fitted_weights_catch_more_of_the_tenants_anomalies_than_two_sided_ones():
    rng = np.random.default_rng(11)
    benign, anomalous = benign_signals(rng, 400), repetitive_signals(rng, 40)
    fitted = fit_formula(ScoreFormula(kind=FITTED), benign, anomalous)
    even = replace(fitted, lo_d=0.5, lo_coh=0.5, lo_r=0.5)
    calibration, fresh = (
        benign_signals(rng, 400),
        [{**s, "r": s["r"] + 0.15} for s in repetitive_signals(rng, 400)],
    )  # anomalies nearer the centre than the fit's: the side decides whether they are caught
    caught = {}
    for name, formula in (("one-sided", fitted), ("two-sided", even)):
        threshold = conformal_threshold(sorted(formula.score(s) for s in calibration), 0.05)
        caught[name] = np.mean([formula.score(s) > threshold for s in fresh])
    assert caught["one-sided"] > caught["two-sided"] + 0.05


def test_with_weights_fitted_on_anomalies_of_both_sides_a_benign_pcs_is_escalated_at_most_delta_of_the_time():
    rng = np.random.default_rng(12)
    delta, n, trials, fresh = 0.1, 150, 300, 200
    escalated = []
    for trial in range(trials):
        labels = benign_signals(rng, n)
        ids = [f"{trial}-{k}" for k in range(n)]
        fit = [s for s, pcs_id in zip(labels, ids, strict=True) if in_fit_fold(pcs_id)]
        calibration = [s for s, pcs_id in zip(labels, ids, strict=True) if not in_fit_fold(pcs_id)]
        anomalous = repetitive_signals(rng, 15) + incoherent_signals(rng, 15)
        formula = fit_formula(ScoreFormula(kind=FITTED), fit, anomalous)
        threshold = conformal_threshold(sorted(formula.score(s) for s in calibration), delta)
        escalated.append(np.mean([formula.score(s) > threshold for s in benign_signals(rng, fresh)]))
    rate = float(np.mean(escalated))
    assert rate <= delta + 0.01  # E[rate] ≤ delta; 300 trials put its standard error near 0.002
    assert rate >= delta - 1 / (0.8 * n + 1) - 0.01


pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_recalibration_fits_the_formula_on_the_fit_fold_and_calibrates_on_the_rest():
    rng = np.random.default_rng(7)
    benign = benign_signals(rng, 400)
    for k, signals in enumerate(benign):
        services.record_label(tenant="acme", pcs_id=f"b{k}", label="benign", provenance="audit", signals=signals)
    for k, signals in enumerate(repetitive_signals(rng, 40)):
        services.record_label(
            tenant="acme", pcs_id=f"a{k}", label="anomalous", provenance="escalation", signals=signals
        )
    spec = ScoreFormula(kind=FITTED)
    services.recalibrate_tenant("acme", delta=0.05, n_min=100, params_version=1, formula=spec)
    snapshot = CalibrationSnapshot.objects.filter(tenant="acme").latest("id")
    in_fold = [signals for k, signals in enumerate(benign) if in_fit_fold(f"b{k}")]
    assert 0 < len(in_fold) < 400 and snapshot.n == 400 - len(in_fold)  # no label in both
    formula = ScoreFormula.from_dict(snapshot.formula)
    assert formula.kind == FITTED and snapshot.formula_key == formula.key != spec.key
    assert formula.c_r == pytest.approx(float(np.median([s["r"] for s in in_fold])), abs=1e-9)
    assert formula.w_r > 0.4  # the escalation labels of repetition moved weight to r
    calibration = sorted(formula.score(s) for k, s in enumerate(benign) if not in_fit_fold(f"b{k}"))
    assert snapshot.scores == calibration


@pytestmark_db
def test_the_reference_kind_calibrates_on_every_benign_audit_label():
    for k, signals in enumerate(benign_signals(np.random.default_rng(8), 50)):
        services.record_label(tenant="acme", pcs_id=f"b{k}", label="benign", provenance="audit", signals=signals)
    services.recalibrate_tenant("acme", delta=0.05, n_min=10, params_version=1, formula=ScoreFormula(kind=REFERENCE))
    assert CalibrationSnapshot.objects.filter(tenant="acme").latest("id").n == 50


@pytestmark_db
def test_a_what_if_of_the_fitted_kind_decides_with_the_calibration_it_would_have():
    rng = np.random.default_rng(9)
    for k, signals in enumerate(benign_signals(rng, 300)):
        services.record_label(tenant="acme", pcs_id=f"b{k}", label="benign", provenance="audit", signals=signals)
    spec = ScoreFormula(kind=FITTED)
    preview = services.preview_snapshots(["acme"], formula=spec, delta=0.05, n_min=100)["acme"]
    services.recalibrate_tenant("acme", delta=0.05, n_min=100, params_version=1, formula=spec)
    stored = CalibrationSnapshot.objects.filter(tenant="acme").latest("id")
    assert preview.formula.key == stored.formula_key != spec.key
    assert (preview.n, list(preview.scores)) == (stored.n, stored.scores)
