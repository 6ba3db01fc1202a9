"""The policy DSL compiles to a draft version, and refuses a broken rule with its line and column."""

from __future__ import annotations

import re

import pytest

import policy.dsl
from policy.dsl import PolicyError, compile_policy
from policy.models import VerifyParams
from policy.verification import VerifyParamsValues

DEFAULTS = {
    "tol_d": 0.15, "tol_coh": 0.05, "budget_tol": 0.01, "base": 0.10, "alpha": 0.30, "beta": 0.50, "gamma": 0.20,
    "d0": 2.2, "sticky_coh_min": 0.70, "sticky_d_max": 1.5, "non_sticky_d_min": 2.6, "w_d": 0.35, "w_coh": 0.40,
    "w_r": 0.25, "r0": 0.65, "delta": 0.05, "reject_delta": 0.005, "n_min": 100, "audit_rate": 0.02,
    "bootstrap_audit_rate": 0.2, "dedup_ttl_days": 14, "score_kind": "reference",
}  # fmt: skip
EXAMPLE = policy.dsl.__doc__.split("Example::")[1].split("Anything")[0]


def test_the_documented_example_sets_every_field():
    unset = dict.fromkeys(DEFAULTS, -1.0)  # any field the example left unset would break an invariant
    assert compile_policy(EXAMPLE, unset) == {**DEFAULTS, "tol_d": 0.12, "score_kind": "fitted"}


def test_a_policy_names_the_score_kind_and_only_a_known_one():
    assert compile_policy("score kind = centred\n", DEFAULTS)["score_kind"] == "centred"
    with pytest.raises(PolicyError) as refused:
        compile_policy("score kind = best\n", DEFAULTS)
    assert refused.value.line == 1
    with pytest.raises(PolicyError, match="already set"):
        compile_policy("score kind = centred\nscore kind = fitted\n", DEFAULTS)


def test_unset_fields_come_from_the_base_version():
    values = compile_policy(
        "# only two changes\ntolerance D_hat = 0.1\n\nconformal delta = 0.04, n_min = 50\n", DEFAULTS
    )
    assert values == {**DEFAULTS, "tol_d": 0.1, "delta": 0.04, "n_min": 50}


def test_the_defaults_match_the_verifier():
    v = VerifyParamsValues()
    assert (DEFAULTS["tol_d"], DEFAULTS["delta"], DEFAULTS["w_r"]) == (v.tol_d, v.delta, v.w_r)


@pytest.mark.parametrize(
    ("policy", "line", "column", "words"),
    [
        ("tolerance D_hat = 0.1\nbudget alpha = 1.5", 2, 16, "alpha must be within [0, 1]"),
        ("regime sticky when coh_star >= 1.3 and D_hat <= 1.5", 1, 32, "sticky_coh_min"),
        ("conformal reject_delta = 0.2", 1, 26, "reject_delta must be smaller than delta"),
        ("tolerance coh_star = 0.3", 1, 22, "tol_coh"),
        ("tolerance budget = 0", 1, 20, "budget_tol a tolerance must be positive"),
        ("budget base = 0.5, gamma = 0.4", 1, 15, "budget formula reaches"),
        ("tolerance D_hat = 0.1\ntolerance D_hat = 0.2", 2, 19, "already set on line 1"),
        ("tolerance X = 1", 1, 11, "unknown tolerance name 'X'; known tolerance names: D_hat, coh_star, budget"),
        ("tolerance delta = 0.1", 1, 11, "unknown tolerance name 'delta'; known tolerance names: D_hat, coh_star"),
        ("budget base = 0.1, zeta = 2", 1, 20, "unknown budget name 'zeta'; known budget names: base, alpha, beta"),
        ("toleranc D_hat = 0.1", 1, 1, "unknown statement 'toleranc'; a statement starts with tolerance, budget"),
        ("tolerance D_hat 0.12", 1, 17, "expected '=', found the number 0.12"),
        ("dedup ttl = 14", 1, 15, "expected 'days', found the end of the line"),
        ("audit rate = 0.1 extra", 1, 18, "expected the end of the line, found 'extra'"),
        (
            "\n\nconformal delta = 0.5,",
            3,
            23,
            "expected a conformal name (delta, reject_delta or n_min), found the end",
        ),
        ("conformal n_min = 1e999", 1, 19, "n_min must be a finite number; 1e999 is too large"),
        ("dedup ttl = 1.5 days", 1, 13, "whole number"),
        ("tolerance D_hat = 1e999", 1, 19, "tol_d must be a finite number"),
        ("score r0 = " + "9" * 400, 1, 12, "r0 must be a finite number"),
    ],
)
def test_a_broken_rule_is_refused_with_line_and_column(policy, line, column, words):
    with pytest.raises(PolicyError) as refused:
        compile_policy(policy, DEFAULTS)
    assert (refused.value.line, refused.value.column) == (line, column)
    assert words in refused.value.message
    # Plain words: no parser internals (token reprs, terminal names) reach the admin.
    assert "Token(" not in refused.value.message
    assert not re.search(r"\b(NUMBER|EQUAL|_NL|[A-Z]+_NAME|SCORE_KIND)\b", refused.value.message)


@pytest.mark.django_db
def test_a_policy_with_an_infinite_value_stores_no_draft(admin_client):
    response = admin_client.post(
        "/admin/policy/verifyparams/policy/", {"policy": "tolerance D_hat = 1e999\n", "reason": "no D̂ check"}
    )
    assert response.status_code == 200 and "must be a finite number" in response.content.decode()
    assert list(VerifyParams.objects.values_list("version", flat=True)) == [1]


@pytest.mark.django_db
def test_a_pasted_policy_becomes_a_draft_in_the_admin(admin_client, admin_user):
    response = admin_client.post(
        "/admin/policy/verifyparams/policy/", {"policy": "tolerance D_hat = 0.1\n", "reason": "tighter D̂"}
    )
    assert response.status_code == 302
    draft = VerifyParams.objects.get(version=2)
    assert (draft.tol_d, draft.is_active, draft.created_by, draft.reason) == (0.1, False, admin_user, "tighter D̂")


@pytest.mark.django_db
def test_a_refused_policy_shows_where_and_stores_nothing(admin_client):
    response = admin_client.post(
        "/admin/policy/verifyparams/policy/", {"policy": "tolerance D_hat = 0.1\nbudget alpha = 1.5", "reason": "x"}
    )
    assert response.status_code == 200
    assert "line 2, column 16: alpha must be within [0, 1]" in response.content.decode()
    assert VerifyParams.objects.count() == 1
