"""POST /v1/pcs/submit decides by the conformal p-value once the tenant's calibration holds n_min benign labels."""

from __future__ import annotations

import pytest

from calibration import services
from calibration.models import GLOBAL_SET
from flk_site.testing import make_pcs, signed
from ingest.models import PcsRecord
from policy.models import VerifyParams

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
    # an audit sample adds a review item
    VerifyParams.objects.filter(is_active=True).update(audit_rate=0.0, bootstrap_audit_rate=0.0)
    submit(signed(make_pcs(**LOW)))
    with django_assert_num_queries(1):
        assert submit(signed(make_pcs(**LOW))).status_code == 200


def test_pcs_are_sampled_for_audit_whatever_their_verdict(hmac_default_tenant, submit):
    VerifyParams.objects.filter(is_active=True).update(audit_rate=1.0, bootstrap_audit_rate=1.0)
    accepted = submit(signed(make_pcs())).json()["pcs_id"]
    pcs = make_pcs()
    pcs["D_hat"] = 1.4
    escalated = submit(signed(pcs)).json()
    assert escalated["decision"] == "escalate"
    for pcs_id in (accepted, escalated["pcs_id"]):
        record = PcsRecord.objects.get(pcs_id=pcs_id)
        assert (record.audit_sample, record.audit_probability) == (True, 1.0)


def test_the_audit_share_is_the_same_for_accepted_and_escalated_pcs(hmac_default_tenant, submit):
    from scipy import stats

    VerifyParams.objects.filter(is_active=True).update(audit_rate=0.3, bootstrap_audit_rate=0.3)
    for n in range(200):
        pcs = make_pcs()
        if n % 2:
            pcs["D_hat"] = 1.4  # fails the D̂ tolerance: escalated
        submit(signed(pcs))
    counts = {
        decision: (PcsRecord.objects.filter(decision=decision, audit_sample=True).count(),
                   PcsRecord.objects.filter(decision=decision).count())
        for decision in ("accept", "escalate")
    }  # fmt: skip
    assert counts["accept"][1] == counts["escalate"][1] == 100
    for drawn, total in counts.values():
        # Each share is Binomial(100, 0.3): a two-sided exact test at 0.001 fails a correct draw 1 run in 1000.
        assert stats.binomtest(drawn, total, 0.3).pvalue > 0.001
    assert set(PcsRecord.objects.values_list("audit_probability", flat=True)) == {0.3}


def test_a_tenant_under_n_min_is_sampled_at_the_bootstrap_share(calibrated_default, make_tenant, submit):
    from ingest.services import audit_probability
    from policy.verification import VerifyParamsValues

    params = VerifyParamsValues(audit_rate=0.02, bootstrap_audit_rate=0.25, n_min=100)
    assert audit_probability(params, None) == 0.25  # no calibration at all
    own = services.current_snapshot("default")
    assert own is not None and own.source == "own" and own.n >= 100
    assert audit_probability(params, own) == 0.02
    assert (
        audit_probability(VerifyParamsValues(audit_rate=0.02, bootstrap_audit_rate=0.25, n_min=own.n + 1), own) == 0.25
    )


def test_no_pcs_is_sampled_when_the_audit_rate_is_zero(hmac_default_tenant, submit):
    VerifyParams.objects.filter(is_active=True).update(audit_rate=0.0, bootstrap_audit_rate=0.0)
    for _ in range(5):
        submit(signed(make_pcs()))
    assert not PcsRecord.objects.filter(audit_sample=True).exists()


def test_the_outcome_signal_carries_the_audit_flag_and_score(hmac_default_tenant, submit):
    from ingest.signals import outcome_stored

    seen = []

    def receiver(**kwargs):
        seen.append(kwargs)

    VerifyParams.objects.filter(is_active=True).update(audit_rate=1.0, bootstrap_audit_rate=1.0)
    outcome_stored.connect(receiver, dispatch_uid="test-audit-flag")
    try:
        answer = submit(signed(make_pcs())).json()
    finally:
        outcome_stored.disconnect(dispatch_uid="test-audit-flag")
    assert seen[0]["audit_sample"] is True
    assert seen[0]["score"] == answer["score"]


def test_rejection_is_off_while_n_cannot_give_a_p_value_as_small_as_reject_delta(hmac_default_tenant, submit):
    # 150 scores: the smallest p-value is 1/151 > 0.005, so "reject" would be impossible to reach honestly.
    label_benign_audit("default", [0.1] * 150)
    recalibrate("default")
    answer = submit(signed(make_pcs(**HIGH))).json()
    assert answer["decision"] == "escalate"
    assert answer["conformal"]["p_value"] == pytest.approx(1 / 151)
    assert answer["conformal"]["reject_enabled"] is False
    assert "rejection is off until the calibration set holds 199" in answer["reasons"][0]["detail"]


def test_rejection_turns_on_at_n_199(hmac_default_tenant, submit):
    label_benign_audit("default", [0.1] * 199)
    recalibrate("default")
    answer = submit(signed(make_pcs(**HIGH))).json()
    assert (answer["decision"], answer["conformal"]["reject_enabled"]) == ("reject", True)
    assert answer["conformal"]["p_value"] == pytest.approx(1 / 200)


def test_a_snapshot_of_another_formula_is_compared_under_its_own_formula(calibrated_default, submit):
    # An admin changed r0; until recalibration runs, the p-value compares like with like.
    VerifyParams.objects.filter(is_active=True).update(r0=0.05)
    from tenancy.config_cache import announce_change

    announce_change()
    answer = submit(signed(make_pcs(**LOW))).json()
    assert answer["score"] != pytest.approx(0.3023587, abs=1e-6)  # the score under the new formula
    assert answer["conformal"]["score"] == pytest.approx(0.3023587, abs=1e-6)  # the snapshot's formula
    assert answer["conformal"]["p_value"] == pytest.approx(16 / 201)
