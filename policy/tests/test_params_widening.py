"""Which VerifyParams changes widen acceptance (and need a confirmation), and the audit-share invariant."""

from __future__ import annotations

import pytest

from policy.params_rules import invariant_errors, widened_fields
from policy.verification import reject_possible

BASE = {
    "tol_d": 0.15, "tol_coh": 0.05, "budget_tol": 0.01, "base": 0.10, "alpha": 0.30, "beta": 0.50, "gamma": 0.20,
    "d0": 2.2, "sticky_coh_min": 0.70, "sticky_d_max": 1.5, "non_sticky_d_min": 2.6, "w_d": 0.35, "w_coh": 0.40,
    "w_r": 0.25, "r0": 0.65, "delta": 0.05, "reject_delta": 0.005, "n_min": 100, "audit_rate": 0.02,
    "bootstrap_audit_rate": 0.2, "dedup_ttl_days": 14,
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "widens"),
    [
        ({"delta": 0.04}, ["delta"]),  # fewer PCS escalated by the conformal step
        ({"delta": 0.06}, []),
        ({"n_min": 200}, ["n_min"]),  # a tenant between 100 and 200 loses its conformal step
        ({"n_min": 50}, []),
        # reject_delta only moves PCS between escalate and reject, two refusals: never a widening
        ({"reject_delta": 0.001}, []),
        ({"reject_delta": 0.01}, []),
        ({"tol_d": 0.2}, ["tol_d"]),
        ({"audit_rate": 0.0}, []),
    ],
)
def test_a_change_widens_acceptance_exactly_when_it_lets_more_pcs_be_accepted(change, widens):
    assert widened_fields(BASE, {**BASE, **change}) == widens


def test_the_share_until_n_min_is_at_least_the_audit_share():
    assert invariant_errors(BASE) == {}
    errors = invariant_errors({**BASE, "audit_rate": 0.3, "bootstrap_audit_rate": 0.2})
    assert list(errors) == ["bootstrap_audit_rate"]
    assert "at least the audit share" in errors["bootstrap_audit_rate"][0]
    assert "bootstrap_audit_rate" in invariant_errors({**BASE, "bootstrap_audit_rate": 1.5})


@pytest.mark.parametrize(
    ("n", "reject_delta", "possible"),
    [(198, 0.005, False), (199, 0.005, True), (98, 0.01, False), (99, 0.01, True), (999, 0.001, True)],
)
def test_rejection_is_possible_from_n_equal_to_one_over_reject_delta_minus_one(n, reject_delta, possible):
    assert reject_possible(n, reject_delta) is possible
