"""What-if from a draft: counts the decisions the draft would change on recent PCS and changes no stored outcome."""

from __future__ import annotations

import time

import pytest

from flk_site.testing import make_pcs
from ingest.models import PcsRecord
from policy.models import VerifyParams, WhatIfReport
from policy.versions import create_draft


def draft_with(**changes) -> VerifyParams:
    active = VerifyParams.objects.get(is_active=True)
    return create_draft({**active.param_values(), **changes}, "what if", None)


def stored_outcomes() -> list[tuple]:
    return list(PcsRecord.objects.order_by("id").values_list("pcs_id", "decision", "status_code", "response"))


@pytest.mark.django_db
def test_the_report_counts_changed_decisions_with_examples_and_stores_nothing_else(
    admin_client, unsigned_default_tenant, submit, django_capture_on_commit_callbacks
):
    for _ in range(4):
        submit(make_pcs())
    submit(make_pcs(degraded=True))  # escalated under any parameters
    before = stored_outcomes()
    draft = draft_with(base=0.2)  # every claimed budget now deviates by 0.1 > the 0.01 tolerance
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/policy/verifyparams/{draft.pk}/whatif/", {"sample_size": "3"})
    report = WhatIfReport.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/whatifreport/{report.pk}/change/")
    assert (report.status, report.examined, report.baseline_version) == ("done", 3, 1)
    # the three most recent: the degraded one stays escalated, two accepted ones become escalated
    assert report.transitions == {"accept→escalate": 2}
    assert report.changed == 2
    assert {e["reasons_after"][0] for e in report.examples} == {"budget_deviation"}
    assert stored_outcomes() == before
    page = admin_client.get(f"/admin/policy/whatifreport/{report.pk}/change/")
    assert "accept→escalate: 2" in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("size", ["0", "-5", "ten", "2000000"])
def test_a_bad_sample_size_is_refused(admin_client, size):
    draft = draft_with(tol_d=0.1)
    response = admin_client.post(f"/admin/policy/verifyparams/{draft.pk}/whatif/", {"sample_size": size})
    assert response.status_code == 200 and b"whole number" in response.content
    assert not WhatIfReport.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_computes_the_report(admin_client, unsigned_default_tenant, submit, real_celery_worker):
    for _ in range(3):
        submit(make_pcs())
    draft = draft_with(base=0.2)
    admin_client.post(f"/admin/policy/verifyparams/{draft.pk}/whatif/", {"sample_size": "10000"})
    report = WhatIfReport.objects.get()
    deadline = time.monotonic() + 60
    while report.status in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        report.refresh_from_db()
    assert report.status == "done", real_celery_worker.read_text()[-3000:]
    assert (report.examined, report.transitions) == (3, {"accept→escalate": 3})
    assert set(PcsRecord.objects.values_list("decision", flat=True)) == {"accept"}


def test_with_the_task_queue_unreachable_the_report_fails_at_once_saying_why(gunicorn_service):
    """Redis down under gunicorn: the admin is told, the report does not wait as pending for ever, no 500."""
    import requests
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import User

    hasher = PBKDF2PasswordHasher()  # as the service hashes; the test settings use another hasher
    User.objects.create(username="root", password=hasher.encode("pw-for-tests", hasher.salt()), is_staff=True,
                        is_superuser=True)  # fmt: skip
    draft = draft_with(base=0.2)
    service = gunicorn_service(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
    admin = requests.Session()
    login_url = f"{service.url}/admin/login/"
    admin.get(login_url, timeout=30)
    admin.post(login_url, data={"username": "root", "password": "pw-for-tests", "next": "/admin/",
                                "csrfmiddlewaretoken": admin.cookies["csrftoken"]}, timeout=30)  # fmt: skip
    whatif_url = f"{service.url}/admin/policy/verifyparams/{draft.pk}/whatif/"
    assert admin.get(whatif_url, timeout=30).status_code == 200
    answer = admin.post(whatif_url, data={"sample_size": "3", "csrfmiddlewaretoken": admin.cookies["csrftoken"]},
                        timeout=60)  # fmt: skip
    report = WhatIfReport.objects.get()
    assert answer.status_code == 200 and answer.url.endswith(f"/whatifreport/{report.pk}/change/")
    assert "not started: the task queue (Redis) could not be reached" in answer.text
    assert report.status == "failed" and "could not be reached" in report.error and report.finished_at


@pytest.mark.django_db
def test_the_report_shows_what_a_score_change_does_to_calibration(
    admin_client, unsigned_default_tenant, submit, django_capture_on_commit_callbacks
):
    import random

    from calibration import services as calibration
    from calibration.scoring import ScoreFormula

    rng = random.Random(7)
    VerifyParams.objects.filter(is_active=True).update(audit_rate=1.0, bootstrap_audit_rate=1.0)
    for n in range(150):  # benign audit labels whose r spreads around 0.6
        signals = {"D_hat": 1.0, "coh_star": 0.8, "r": rng.uniform(0.4, 0.8)}
        calibration.record_label(tenant="default", pcs_id=f"cal-{n}", label="benign", provenance="audit",
                                 signals=signals, inclusion_probability=1.0)  # fmt: skip
    for r in (0.45, 0.6, 0.75, 0.5):
        submit(make_pcs(coh_star=0.8, r=r))
    draft = draft_with(r0=0.45)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/admin/policy/verifyparams/{draft.pk}/whatif/", {"sample_size": "10"})
    report = WhatIfReport.objects.get()
    assert report.status == "done", report.error
    [row] = report.calibration
    old, new = ScoreFormula(), ScoreFormula(r0=0.45)
    rows, _ = calibration.calibration_scores("default", new)
    expected_new = calibration.preview_snapshots(["default"], formula=new, delta=0.05, n_min=100)["default"]
    expected_old = calibration.preview_snapshots(["default"], formula=old, delta=0.05, n_min=100)["default"]
    assert (row["tenant"], row["n_before"], row["n_after"], row["audited"]) == ("default", 150, 150, 4)
    assert row["threshold_before"] == expected_old.threshold and row["threshold_after"] == expected_new.threshold
    assert row["threshold_before"] != row["threshold_after"]
    assert len(rows) == 150
    page = admin_client.get(f"/admin/policy/whatifreport/{report.pk}/change/").content.decode()
    assert "audited PCS not accepted" in page and "150 → 150" in page
