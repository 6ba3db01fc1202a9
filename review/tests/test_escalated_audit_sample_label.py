"""An audit sample the conformal step escalated is still labelled as an audit sample: the draw ignores the verdict."""

from __future__ import annotations

import pytest

from calibration import services as calibration
from calibration.models import GLOBAL_SET, CalibrationLabel
from flk_site.testing import make_pcs, reset_config_memos, signed
from policy.models import VerifyParams
from review import services
from review.models import ReviewItem

MID = {"coh_star": 0.73, "r": 0.87}  # score ~0.471: p = 6/201 against the set below, escalated at delta 0.05


def test_a_conformally_escalated_audit_sample_is_labelled_with_audit_provenance(
    hmac_default_tenant, submit, make_user, settings
):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    for n, score in enumerate([0.1] * 185 + [0.4] * 10 + [0.6] * 5):
        calibration.record_label(tenant="default", pcs_id=f"cal-{n}", score=score, label="benign", provenance="audit")
    for name in ("default", GLOBAL_SET):
        calibration.recalibrate_tenant(name, delta=0.05, n_min=100, params_version=1)
    calibration.announce_snapshot()
    VerifyParams.objects.filter(is_active=True).update(audit_rate=1.0, bootstrap_audit_rate=1.0)
    reset_config_memos()

    pcs = signed(make_pcs(**MID))
    answer = submit(pcs).json()
    assert answer["decision"] == "escalate"
    assert [r["code"] for r in answer["reasons"]] == ["conformal_p_value"]
    item = ReviewItem.objects.get(pcs_id=pcs["pcs_id"])
    alice = make_user("alice")
    assert services.claim_next(alice) == item
    services.label_item(alice, item.pk, "benign")

    label = CalibrationLabel.objects.get(tenant="default", pcs_id=pcs["pcs_id"])
    assert (label.provenance, label.decision, label.flagged) == ("audit", "escalate", True)
    assert label.inclusion_probability == 1.0
    assert label.p_value == pytest.approx(6 / 201)
