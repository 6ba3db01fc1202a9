"""VerifyParams versions through the admin: drafts, activation with its audit fields, rollback, diff, widening."""

from __future__ import annotations

import pytest

from flk_site import shared_redis
from policy.models import VerifyParams
from policy.params_rules import PARAM_FIELDS
from tenancy.config_cache import GENERATION_KEY

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/policy/verifyparams/add/"


def form_data(source: VerifyParams | None = None, **changes) -> dict:
    source = source or VerifyParams.objects.get(is_active=True)
    return {**{name: getattr(source, name) for name in PARAM_FIELDS}, "reason": "stricter D̂", **changes}


def test_saving_an_edit_creates_a_new_draft_and_leaves_the_version_unchanged(admin_client, admin_user):
    v1 = VerifyParams.objects.get(version=1)
    response = admin_client.post(f"/admin/policy/verifyparams/{v1.pk}/change/", form_data(tol_d=0.10))
    assert response.status_code == 302
    v1.refresh_from_db()
    assert v1.tol_d == 0.15 and v1.is_active
    draft = VerifyParams.objects.get(version=2)
    assert (draft.tol_d, draft.is_active, draft.reason, draft.created_by) == (0.10, False, "stricter D̂", admin_user)
    assert draft.created_at is not None and draft.activated_at is None


def test_activation_records_who_and_when_and_keeps_exactly_one_active(admin_client, admin_user):
    admin_client.post(ADD_URL, form_data(tol_d=0.10))
    draft = VerifyParams.objects.get(version=2)
    page = admin_client.get(f"/admin/policy/verifyparams/{draft.pk}/activate/")
    assert b"Activate v2" in page.content
    response = admin_client.post(f"/admin/policy/verifyparams/{draft.pk}/activate/")
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.is_active and draft.activated_by == admin_user and draft.activated_at is not None
    assert list(VerifyParams.objects.filter(is_active=True)) == [draft]


def test_rollback_is_activating_an_older_version(admin_client):
    admin_client.post(ADD_URL, form_data(tol_d=0.10))
    v1, v2 = VerifyParams.objects.get(version=1), VerifyParams.objects.get(version=2)
    admin_client.post(f"/admin/policy/verifyparams/{v2.pk}/activate/")
    response = admin_client.post(
        "/admin/policy/verifyparams/", {"action": "activate_selected", "_selected_action": [v1.pk]}
    )
    assert response.status_code == 302 and response["Location"].endswith(f"/{v1.pk}/activate/")
    admin_client.post(response["Location"])
    assert [v.version for v in VerifyParams.objects.filter(is_active=True)] == [1]
    assert VerifyParams.objects.count() == 2


def test_the_diff_shows_only_what_changed(admin_client):
    admin_client.post(ADD_URL, form_data(tol_d=0.10, alpha=0.25))
    v1, v2 = VerifyParams.objects.get(version=1), VerifyParams.objects.get(version=2)
    response = admin_client.get(f"/admin/policy/verifyparams/{v2.pk}/diff/?against={v1.pk}")
    assert [row["name"] for row in response.context["diff"]] == ["tol_d", "alpha"]
    assert [(row["old"], row["new"]) for row in response.context["diff"]] == [(0.15, 0.10), (0.30, 0.25)]


@pytest.mark.parametrize("changes", [{"tol_d": 0.3}, {"tol_coh": 0.08}, {"budget_tol": 0.05}, {"delta": 0.01}])
def test_widening_asks_for_confirmation_before_saving(admin_client, changes):
    data = form_data(**changes)
    page = admin_client.post(ADD_URL, data)
    assert page.status_code == 200
    assert b"widens" in page.content and b"Yes, save the wider draft" in page.content
    assert VerifyParams.objects.count() == 1
    confirmed = admin_client.post(ADD_URL, {**data, "_confirm_widening": "1"})
    assert confirmed.status_code == 302
    assert VerifyParams.objects.filter(version=2, is_active=False).exists()


def test_narrowing_saves_without_confirmation(admin_client):
    assert admin_client.post(ADD_URL, form_data(tol_d=0.12)).status_code == 302


def test_versions_cannot_be_deleted(admin_client):
    v1 = VerifyParams.objects.get(version=1)
    assert admin_client.post(f"/admin/policy/verifyparams/{v1.pk}/delete/", {"post": "yes"}).status_code == 403
    assert VerifyParams.objects.filter(pk=v1.pk).exists()


def test_a_bulk_update_also_announces_the_change(django_capture_on_commit_callbacks):
    shared_redis.client().delete(GENERATION_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        VerifyParams.objects.filter(version=1).update(reason="Protocol defaults, reworded.")
    assert shared_redis.client().get(GENERATION_KEY) is not None
