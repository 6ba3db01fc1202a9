"""The version pages read the ids and sizes an admin types as ASCII digits: anything else is ignored or refused
with a message, never a 500 (``str.isdigit()`` is true for "²", which ``int()`` refuses)."""

from __future__ import annotations

import pytest

from policy.models import VerifyParams
from review.tests.test_numbers_in_query_strings import ODD_NUMBERS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("raw", ODD_NUMBERS)
def test_a_new_draft_from_an_odd_version_id_starts_from_the_active_version(admin_client, raw):
    active = VerifyParams.objects.get(is_active=True)
    response = admin_client.get("/admin/policy/verifyparams/add/", {"from": raw})
    assert response.status_code == 200
    assert response.context["adminform"].form.initial["tol_d"] == active.tol_d


@pytest.mark.parametrize("raw", ODD_NUMBERS)
def test_a_diff_against_an_odd_version_id_compares_with_the_active_version(admin_client, raw):
    active = VerifyParams.objects.get(is_active=True)
    response = admin_client.get(f"/admin/policy/verifyparams/{active.pk}/diff/", {"against": raw})
    assert response.status_code == 200
    assert response.context["other"] == active


@pytest.mark.parametrize("raw", ["²", "1²", "١", "9" * 40, "0", "-1"])
def test_an_odd_what_if_size_is_refused_with_the_range(admin_client, raw):
    active = VerifyParams.objects.get(is_active=True)
    response = admin_client.post(f"/admin/policy/verifyparams/{active.pk}/whatif/", {"sample_size": raw})
    assert response.status_code == 200
    assert "a whole number within [1, " in response.content.decode()
    assert not active.whatif_reports.exists()
