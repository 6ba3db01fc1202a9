"""The pure verification reproduces the vectors' verdicts and reports every failing check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_client.schema import parse_pcs
from flk_site.testing import make_pcs
from policy.verification import VerifyParamsValues, verify_pcs

VECTORS = json.loads((Path(__file__).parents[2] / "agent_client/tests/vectors/pcs_vectors.json").read_text())


@pytest.mark.parametrize("case", VECTORS["pcs"], ids=lambda c: c["name"])
def test_default_params_give_the_vectors_verdict(case):
    verdict = verify_pcs(parse_pcs(json.dumps(case["pcs"])), VerifyParamsValues())
    expected = case["verify"]
    assert verdict.decision == expected["decision"]
    assert verdict.http_status == expected["http_status"]
    assert [c.code for c in verdict.failed_checks] == expected["failed_checks"]
    assert verdict.recomputed_d_hat == expected["recomputed_D_hat"]
    assert verdict.regime == expected["expected_regime"]
    assert verdict.budget == expected["expected_budget"]


def test_every_failing_check_is_reported_with_a_detail():
    pcs = make_pcs(degraded=True)
    pcs.update(D_hat=2.0, coh_star=1.3, regime="non_sticky", budget=0.99)
    verdict = verify_pcs(pcs, VerifyParamsValues())
    codes = [c.code for c in verdict.failed_checks]
    assert codes == ["D_hat_tolerance", "coh_star_bounds", "regime_mismatch", "budget_deviation", "degraded"]
    assert all(c.detail for c in verdict.failed_checks)
    assert verdict.decision == "escalate"


def test_a_wider_tolerance_accepts_the_same_lie():
    pcs = make_pcs()
    pcs["D_hat"] += 0.3
    assert verify_pcs(pcs, VerifyParamsValues()).decision == "escalate"
    assert verify_pcs(pcs, VerifyParamsValues(tol_d=0.5)).decision == "accept"


def test_the_coherence_bound_includes_its_tolerance():
    pcs = make_pcs(coh_star=1.04)
    assert "coh_star_bounds" not in [c.code for c in verify_pcs(pcs, VerifyParamsValues()).failed_checks]
    pcs = make_pcs(coh_star=1.06)
    assert "coh_star_bounds" in [c.code for c in verify_pcs(pcs, VerifyParamsValues()).failed_checks]
