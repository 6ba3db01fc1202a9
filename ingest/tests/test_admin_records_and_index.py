"""Stored outcomes are read-only in the admin, findable by pcs_id and shard; the index shows the headline figures."""

from __future__ import annotations

import pytest

from flk_site.testing import make_pcs
from ingest.models import PcsRecord

pytestmark = pytest.mark.django_db


def test_records_are_searchable_by_pcs_id_and_shard(admin_client, unsigned_default_tenant, submit):
    first, second = make_pcs(shard_id="shard-alpha"), make_pcs(shard_id="shard-beta")
    submit(first), submit(second)
    by_id = admin_client.get("/admin/ingest/pcsrecord/", {"q": first["pcs_id"]})
    assert [r.pcs_id for r in by_id.context["cl"].result_list] == [first["pcs_id"]]
    by_shard = admin_client.get("/admin/ingest/pcsrecord/", {"q": "shard-beta"})
    assert [r.pcs_id for r in by_shard.context["cl"].result_list] == [second["pcs_id"]]
    by_decision = admin_client.get("/admin/ingest/pcsrecord/", {"decision__exact": "escalate"})
    assert list(by_decision.context["cl"].result_list) == []


def test_a_record_shows_its_body_to_staff_and_cannot_be_edited(admin_client, unsigned_default_tenant, submit):
    pcs = make_pcs(shard_id="shard-gamma")
    submit(pcs)
    record = PcsRecord.objects.get()
    page = admin_client.get(f"/admin/ingest/pcsrecord/{record.pk}/change/")
    assert page.status_code == 200 and b"shard-gamma" in page.content and b"merkle_root" in page.content
    assert b'name="_save"' not in page.content
    response = admin_client.post(f"/admin/ingest/pcsrecord/{record.pk}/change/", {"decision": "reject"})
    assert response.status_code == 403
    assert admin_client.post(f"/admin/ingest/pcsrecord/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    record.refresh_from_db()
    assert record.decision == "accept"


def test_a_non_staff_user_sees_no_record(client, django_user_model, unsigned_default_tenant, submit):
    submit(make_pcs())
    user = django_user_model.objects.create_user("agent-owner", password="pw-123456789")
    client.force_login(user)
    record = PcsRecord.objects.get()
    response = client.get(f"/admin/ingest/pcsrecord/{record.pk}/change/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_index_shows_the_active_version_and_todays_escalation_rate(admin_client, unsigned_default_tenant, submit):
    submit(make_pcs())
    submit(make_pcs(degraded=True))
    page = admin_client.get("/admin/").content.decode()
    assert 'id="figure-active-params"><a href="/admin/policy/verifyparams/' in page and ">v1</a>" in page
    assert "50 % (1 of 2)" in page
    assert 'id="figure-queue-depth"' in page and 'id="figure-drift-alerts"' in page


def test_the_index_counts_the_open_review_queue_and_todays_drift_alerts(
    admin_client, unsigned_default_tenant, submit, django_capture_on_commit_callbacks
):
    from calibration.models import DriftReport
    from review.models import ReviewItem

    with django_capture_on_commit_callbacks(execute=True):
        submit(make_pcs(degraded=True))
        submit(make_pcs(degraded=True))
    open_items = ReviewItem.objects.exclude(stage="done").count()
    assert open_items >= 2  # each escalation waits for a label
    alert = {"n_labels": 200, "martingale": 1000.0, "martingale_max": 1000.0, "p_value": 0.001, "level": 0.01}
    DriftReport.objects.create(tenant="default", drift_detected=True, **alert)
    DriftReport.objects.create(tenant="default", drift_detected=False, **alert)
    page = admin_client.get("/admin/").content.decode()
    assert f'id="figure-queue-depth">{open_items}<' in page
    assert 'id="figure-drift-alerts">1<' in page


@pytest.mark.parametrize(
    ("query", "shown"),
    [("?decision=%00", 0), ("?decision=accept%00", 1), ("?decision=%00escalate", 0), ("?q=%00&decision=%00", 0)],
)
def test_a_nul_character_in_a_filter_is_dropped_instead_of_failing_in_the_database(
    admin_client, unsigned_default_tenant, submit, query, shown
):
    submit(make_pcs())  # accepted
    response = admin_client.get(f"/admin/ingest/pcsrecord/{query}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == shown
