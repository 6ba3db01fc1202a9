"""Every way into VerifyParams goes through the same guards: widening confirmed, no identical copies, drafts
that never served may go, and what-if examples say which changed PCS were labelled."""

from __future__ import annotations

import pytest

from calibration.services import record_label
from flk_site.testing import make_pcs
from ingest.models import PcsRecord
from policy.models import VerifyParams, WhatIfReport
from policy.params_rules import PARAM_FIELDS
from policy.versions import create_draft

pytestmark = pytest.mark.django_db
POLICY_URL = "/admin/policy/verifyparams/policy/"
ADD_URL = "/admin/policy/verifyparams/add/"


def versions() -> list[int]:
    return list(VerifyParams.objects.order_by("version").values_list("version", flat=True))


def test_a_policy_that_widens_a_tolerance_asks_for_the_same_confirmation_as_the_form(admin_client):
    policy = {"policy": "tolerance D_hat = 0.9\n", "reason": "looser D̂ for a noisy shard"}
    page = admin_client.post(POLICY_URL, policy)
    assert page.status_code == 200
    assert b"Yes, save the wider draft" in page.content
    assert [row[0] for row in page.context["rows"]] == [VerifyParams._meta.get_field("tol_d").verbose_name]
    assert versions() == [1], "no draft before the confirmation"
    confirmed = admin_client.post(POLICY_URL, {**policy, "_confirm_widening": "1"})
    assert confirmed.status_code == 302
    assert VerifyParams.objects.get(version=2).tol_d == 0.9


@pytest.mark.parametrize("text", ["", "# nothing yet\n\n", "tolerance D_hat = 0.15\n"])
def test_a_policy_that_changes_nothing_creates_no_draft_and_says_so(admin_client, text):
    for _ in range(2):
        page = admin_client.post(POLICY_URL, {"policy": text, "reason": "try"})
        assert page.status_code == 200
        assert "The policy changes nothing: these values are exactly those of v1 (in service)" in page.context["error"]
    assert versions() == [1]


def test_a_policy_equal_to_an_existing_draft_points_at_it(admin_client):
    admin_client.post(POLICY_URL, {"policy": "tolerance D_hat = 0.12\n", "reason": "stricter"})
    page = admin_client.post(POLICY_URL, {"policy": "tolerance D_hat = 0.12\n", "reason": "stricter again"})
    assert page.context["error"] == (
        "these values are exactly those of v2 (a draft): no new version was created; to use it, activate v2."
    )
    assert versions() == [1, 2]


def test_a_widening_policy_equal_to_an_existing_draft_says_so_before_asking_to_confirm(admin_client):
    admin_client.post(POLICY_URL, {"policy": "tolerance D_hat = 0.9\n", "reason": "looser", "_confirm_widening": "1"})
    page = admin_client.post(POLICY_URL, {"policy": "tolerance D_hat = 0.90", "reason": "looser again"})
    assert b"Yes, save the wider draft" not in page.content
    assert "exactly those of v2 (a draft)" in page.context["error"]
    assert versions() == [1, 2]


def test_saving_the_form_unchanged_creates_no_copy(admin_client):
    v1 = VerifyParams.objects.get(version=1)
    data = {**{name: getattr(v1, name) for name in PARAM_FIELDS}, "reason": "no change"}
    page = admin_client.post(f"/admin/policy/verifyparams/{v1.pk}/change/", data)
    assert page.status_code == 200
    assert "exactly those of v1 (in service): no new version was created" in page.content.decode()
    assert versions() == [1]


def test_a_draft_that_never_served_can_be_deleted_and_history_cannot(admin_client):
    active = VerifyParams.objects.get(version=1)
    served = create_draft({**active.param_values(), "tol_d": 0.12}, "served once", None)
    admin_client.post(f"/admin/policy/verifyparams/{served.pk}/activate/")
    admin_client.post(f"/admin/policy/verifyparams/{active.pk}/activate/")  # rollback: v2 is history now
    draft = create_draft({**active.param_values(), "tol_d": 0.11}, "never used", None)
    page = admin_client.get(f"/admin/policy/verifyparams/{draft.pk}/change/")
    assert f"/admin/policy/verifyparams/{draft.pk}/delete/" in page.content.decode()
    confirm = admin_client.get(f"/admin/policy/verifyparams/{draft.pk}/delete/")
    assert confirm.status_code == 200
    assert admin_client.post(f"/admin/policy/verifyparams/{draft.pk}/delete/", {"post": "yes"}).status_code == 302
    assert versions() == [1, 2]
    for kept in (active, served):
        page = admin_client.get(f"/admin/policy/verifyparams/{kept.pk}/change/")
        assert f"/admin/policy/verifyparams/{kept.pk}/delete/" not in page.content.decode()
        assert admin_client.post(f"/admin/policy/verifyparams/{kept.pk}/delete/", {"post": "yes"}).status_code == 403
    assert versions() == [1, 2]
    changelist = admin_client.get("/admin/policy/verifyparams/")
    assert "delete_selected" not in dict(changelist.context["action_form"].fields["action"].choices)


def test_the_what_if_examples_are_a_table_with_the_labels_of_the_changed_pcs(
    admin_client, unsigned_default_tenant, submit, django_capture_on_commit_callbacks
):
    for _ in range(3):
        submit(make_pcs())
    labelled, unlabelled = PcsRecord.objects.order_by("-id").values_list("pcs_id", flat=True)[:2]
    record_label(tenant="default", pcs_id=labelled, label="anomalous", provenance="escalation")
    draft = create_draft({**VerifyParams.objects.get(version=1).param_values(), "base": 0.2}, "what if", None)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/admin/policy/verifyparams/{draft.pk}/whatif/", {"sample_size": "2"})
    report = WhatIfReport.objects.get()
    page = admin_client.get(f"/admin/policy/whatifreport/{report.pk}/change/").content.decode()
    assert "<table class='whatif-examples'>" in page and "<pre>" not in page.split("whatif-examples")[1]
    assert "1 of these 2 PCS carry a review label." in page
    rows = page.split("<table class='whatif-examples'>")[1].split("</table>")[0].split("<tr>")[2:]
    by_pcs = {next(p for p in (labelled, unlabelled) if p[:16] in row): row for row in rows}
    assert "<td>anomalous</td>" in by_pcs[labelled] and "accept→escalate" in by_pcs[labelled]
    assert "<td>not labelled</td>" in by_pcs[unlabelled]
