"""An invalid VerifyParams change is refused through the admin with the field named, and nothing is stored."""

from __future__ import annotations

import pytest

from policy.models import VerifyParams
from policy.params_rules import PARAM_FIELDS, invariant_errors

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/policy/verifyparams/add/"


def form_data(**changes) -> dict:
    active = VerifyParams.objects.get(is_active=True)
    return {**{name: getattr(active, name) for name in PARAM_FIELDS}, "reason": "tuning", **changes}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"alpha": 1.2}, "alpha"),
        ({"gamma": -0.1}, "gamma"),
        ({"w_coh": 1.5}, "w_coh"),
        ({"tol_d": 0}, "tol_d"),
        ({"tol_coh": -0.01}, "tol_coh"),
        ({"tol_coh": 0.5}, "tol_coh"),
        ({"budget_tol": 0}, "budget_tol"),
        ({"sticky_coh_min": 1.2}, "sticky_coh_min"),
        ({"delta": 0}, "delta"),
        ({"delta": 1}, "delta"),
        ({"reject_delta": 0.0}, "reject_delta"),
        ({"reject_delta": 0.06}, "reject_delta"),
        ({"base": 0.5, "alpha": 0.3, "gamma": 0.3}, "base"),
        ({"non_sticky_d_min": 1.4}, "non_sticky_d_min"),
    ],
)
def test_an_invalid_change_is_refused_with_the_field_named(admin_client, changes, field):
    before = VerifyParams.objects.count()
    response = admin_client.post(ADD_URL, form_data(**changes))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert VerifyParams.objects.count() == before


def test_a_change_without_a_reason_is_refused(admin_client):
    response = admin_client.post(ADD_URL, form_data(reason="   "))
    assert "reason" in response.context["adminform"].form.errors
    assert VerifyParams.objects.count() == 1


def test_the_protocol_defaults_satisfy_every_invariant():
    assert invariant_errors(VerifyParams.objects.get(version=1).param_values()) == {}


def test_the_budget_bound_counts_the_coh_tolerance():
    values = {**VerifyParams.objects.get(version=1).param_values(), "base": 0.39, "alpha": 0.4, "gamma": 0.2}
    assert invariant_errors(values) == {}  # 0.39 + 0.4 + 0.2 * 1.05 = 1.0
    assert "base" in invariant_errors({**values, "base": 0.40})
