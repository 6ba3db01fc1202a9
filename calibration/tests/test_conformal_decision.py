"""POST /v1/pcs/submit decides by the conformal p-value once the tenant's calibration holds n_min benign labels."""

from __future__ import annotations

import pytest

from calibration import services
from calibration.models import GLOBAL_SET
from flk_site.testing import make_pcs, signed
from ingest.models import PcsRecord, VerifyParams

pytestmark = pytest.mark.django_db

LOW = {"coh_star": 0.95, "r": 0.65}  # score ~0.302
MID = {"coh_star": 0.73, "r": 0.87}  # score ~0.471
HIGH = {"coh_star": 0.2, "r": 0.05}  # score ~0.819


def label_benign_audit(tenant: str, scores: list[float]) -> None:
    for n, score in enumerate(scores):
        services.record_label(tenant=tenant, pcs_id=f"{tenant}-{n}", score=score, label="benign", provenance="audit")


def recalibrate(*tenants: str) -> None:
    for name in [*tenants, GLOBAL_SET]:
        services.recalibrate_tenant(name, delta=0.05, n_min=100, params_version=1)
    services.announce_snapshot()  # the test's transaction never commits; announce as the commit would


@pytest.fixture
def calibrated_default(hmac_default_tenant):
    # 200 benign scores: 185 below LOW, 10 between LOW and MID, 5 between MID and HIGH.
    # LOW: 15 scores >= it, p = 16/201 > 0.05; MID: 5, p = 6/201 in (0.005, 0.05]; HIGH: 0, p = 1/201 <= 0.005.
    label_benign_audit("default", [0.1] * 185 + [0.4] * 10 + [0.6] * 5)
    recalibrate("default")


def test_a_typical_pcs_is_accepted_with_its_p_value(calibrated_default, submit):
    response = submit(signed(make_pcs(**LOW)))
    answer = response.json()
    assert response.status_code == 200
    assert answer["decision"] == "accept"
    assert answer["conformal"]["p_value"] == pytest.approx(16 / 201)
    assert answer["conformal"]["n"] == 200
    assert answer["conformal"]["threshold"] == 0.4
    assert answer["conformal"]["source"] == "own"
    assert answer["conformal"]["score"] == answer["score"] == pytest.approx(0.3023587, abs=1e-6)
    assert answer["conformal"]["snapshot_id"] == services.current_snapshot("default").id


def test_an_unusual_pcs_is_escalated_with_202(calibrated_default, submit):
    response = submit(signed(make_pcs(**MID)))
    assert response.status_code == 202
    assert response.json()["decision"] == "escalate"
    assert response.json()["accepted"] is False
    assert response.json()["conformal"]["p_value"] == pytest.approx(6 / 201)
    assert [r["code"] for r in response.json()["reasons"]] == ["conformal_p_value"]


def test_a_pcs_beyond_every_benign_score_is_rejected_with_202(calibrated_default, submit):
    response = submit(signed(make_pcs(**HIGH)))
    assert response.status_code == 202
    assert response.json()["decision"] == "reject"
    assert response.json()["conformal"]["p_value"] == pytest.approx(1 / 201)
    assert PcsRecord.objects.get(pcs_id=response.json()["pcs_id"]).decision == "reject"


def test_a_bounds_failure_still_escalates_even_when_the_score_is_typical(calibrated_default, submit):
    pcs = make_pcs(**LOW)
    pcs["D_hat"] = 1.4
    response = submit(signed(pcs))
    assert response.status_code == 202
    assert response.json()["decision"] == "escalate"
    assert [r["code"] for r in response.json()["reasons"]] == ["D_hat_tolerance"]


def test_before_n_min_labels_the_checks_alone_decide(hmac_default_tenant, submit):
    label_benign_audit("default", [0.1] * 99)
    recalibrate("default")
    response = submit(signed(make_pcs(**HIGH)))
    assert response.status_code == 200
    assert response.json()["conformal"] is None
    assert response.json()["score"] == pytest.approx(0.8188422, abs=1e-6)


def test_a_tenant_under_n_min_is_decided_by_the_global_set(calibrated_default, make_tenant, submit):
    make_tenant("small", sign_alg="none")
    label_benign_audit("small", [0.1] * 10)
    recalibrate("small")
    response = submit(make_pcs(**MID), tenant="small")
    assert response.status_code == 202
    assert response.json()["conformal"]["source"] == "global"
    assert response.json()["conformal"]["n"] == 210


def test_every_stored_outcome_records_its_score(calibrated_default, submit):
    answer = submit(signed(make_pcs(**HIGH))).json()
    assert PcsRecord.objects.get(pcs_id=answer["pcs_id"]).score == answer["score"]


def test_a_replay_gets_the_first_conformal_answer_even_after_recalibration(calibrated_default, submit):
    pcs = signed(make_pcs(**MID))
    first = submit(pcs)
    label_benign_audit("default", [0.9] * 50)
    recalibrate("default")
    replay = submit(pcs)
    assert replay.status_code == first.status_code == 202
    assert replay.json()["conformal"] == first.json()["conformal"]


def test_the_warm_accept_path_still_makes_one_query_with_a_snapshot(
    calibrated_default, submit, django_assert_num_queries
):
    VerifyParams.objects.filter(is_active=True).update(audit_rate=0.0)  # an audit sample adds a review item
    submit(signed(make_pcs(**LOW)))
    with django_assert_num_queries(1):
        assert submit(signed(make_pcs(**LOW))).status_code == 200


def test_accepted_pcs_are_sampled_for_audit_at_the_configured_rate(hmac_default_tenant, submit):
    VerifyParams.objects.filter(is_active=True).update(audit_rate=1.0)
    accepted = submit(signed(make_pcs())).json()["pcs_id"]
    pcs = make_pcs()
    pcs["D_hat"] = 1.4
    escalated = submit(signed(pcs)).json()["pcs_id"]
    assert PcsRecord.objects.get(pcs_id=accepted).audit_sample is True
    assert PcsRecord.objects.get(pcs_id=escalated).audit_sample is False  # only accepted PCS are audit samples


def test_no_pcs_is_sampled_when_the_audit_rate_is_zero(hmac_default_tenant, submit):
    VerifyParams.objects.filter(is_active=True).update(audit_rate=0.0)
    for _ in range(5):
        submit(signed(make_pcs()))
    assert not PcsRecord.objects.filter(audit_sample=True).exists()


def test_the_outcome_signal_carries_the_audit_flag_and_score(hmac_default_tenant, submit):
    from ingest.signals import outcome_stored

    seen = []

    def receiver(**kwargs):
        seen.append(kwargs)

    VerifyParams.objects.filter(is_active=True).update(audit_rate=1.0)
    outcome_stored.connect(receiver, dispatch_uid="test-audit-flag")
    try:
        answer = submit(signed(make_pcs())).json()
    finally:
        outcome_stored.disconnect(dispatch_uid="test-audit-flag")
    assert seen[0]["audit_sample"] is True
    assert seen[0]["score"] == answer["score"]
