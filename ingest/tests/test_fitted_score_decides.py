"""A tenant's fitted score decides its PCS: the request path takes the p-value under the snapshot's formula."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from calibration.conformal import SnapshotValues, conformal_threshold
from calibration.scoring import ScoreFormula, fit_formula, score_signals
from flk_site.testing import make_pcs
from policy.verification import ESCALATE, VerifyParamsValues, verify_pcs


def snapshot_of(formula: ScoreFormula, signals: list[dict[str, float]]) -> SnapshotValues:
    scores = tuple(sorted(formula.score(s) for s in signals))
    return SnapshotValues(
        id=1, tenant="acme", n=len(scores), delta=0.05, threshold=conformal_threshold(scores, 0.05), scores=scores,
        source="own", created_at=datetime(2026, 1, 1, tzinfo=UTC), params_version=1, formula=formula,
    )  # fmt: skip


def test_a_pcs_is_scored_under_the_tenants_fitted_formula_not_the_global_one():
    pcs = make_pcs()
    rng = np.random.default_rng(1)
    centre = score_signals(pcs)
    benign = [{name: value + rng.normal(0, 0.02) for name, value in centre.items()} for _ in range(300)]
    fitted = fit_formula(ScoreFormula(kind="fitted"), benign[:60])
    params = VerifyParamsValues(score_kind="fitted")
    assert params.score_formula.kind == "fitted" and params.score_formula.key != fitted.key
    verdict = verify_pcs(pcs, params, snapshot_of(fitted, benign[60:]))
    assert verdict.conformal.score == fitted.score(centre)
    assert verdict.decision != ESCALATE  # at the tenant's own centre: as typical as it gets


def test_a_pcs_far_from_the_tenants_centre_is_escalated():
    pcs = make_pcs()
    rng = np.random.default_rng(2)
    centre = {**score_signals(pcs), "r": score_signals(pcs)["r"] + 0.3}  # the tenant's work compresses less
    benign = [{name: value + rng.normal(0, 0.02) for name, value in centre.items()} for _ in range(300)]
    fitted = fit_formula(ScoreFormula(kind="fitted"), benign[:60])
    verdict = verify_pcs(pcs, VerifyParamsValues(score_kind="fitted"), snapshot_of(fitted, benign[60:]))
    assert verdict.decision == ESCALATE and verdict.conformal.p_value <= 0.05
