"""Label completion per tenant: audit samples labelled, expired and waiting, with the oldest wait; on the stats page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calibration import services as calibration
from flk_site.testing import logged_in, make_pcs, reset_config_memos
from ingest.models import PcsRecord
from policy.models import VerifyParams

pytestmark = pytest.mark.django_db


def _audited(submit, n: int, tenant: str = "default") -> list[str]:
    ids = []
    for _ in range(n):
        pcs = make_pcs()
        submit(pcs, tenant=tenant)
        ids.append(pcs["pcs_id"])
    return ids


def test_completion_counts_labelled_expired_and_waiting_audit_samples(unsigned_default_tenant, submit):
    VerifyParams.objects.filter(is_active=True).update(audit_rate=1.0, bootstrap_audit_rate=1.0)
    reset_config_memos()
    labelled, expired, *waiting = _audited(submit, 5)
    PcsRecord.objects.filter(pcs_id=waiting[0]).update(received_at=timezone.now() - timedelta(hours=30))
    calibration.record_label(tenant="default", pcs_id=labelled, label="benign", provenance="audit",
                             signals={"D_hat": 1.0, "coh_star": 0.8, "r": 0.5}, inclusion_probability=1.0)  # fmt: skip
    calibration.record_label(tenant="default", pcs_id="escalation-1", label="benign", provenance="escalation")
    assert calibration.expire_audits([("default", expired)], reason="test", expired_by="root") == 1
    assert calibration.expire_audits([("default", expired)], reason="again") == 0

    row = calibration.audit_completion("default")["default"]
    assert (row.labelled, row.expired, row.waiting, row.drawn) == (1, 1, 3, 5)
    assert row.labelled_share == pytest.approx(0.2)
    assert 30 * 3600 <= row.oldest_waiting_seconds < 30 * 3600 + 600
    everyone = calibration.audit_completion()
    assert list(everyone) == ["default"] and everyone["default"].waiting == 3


def test_a_tenant_without_audit_samples_has_nothing_waiting(db):
    row = calibration.audit_completion("quiet")["quiet"]
    assert (row.labelled, row.expired, row.waiting, row.oldest_waiting_seconds, row.labelled_share) == (
        0, 0, 0, None, None,
    )  # fmt: skip


def test_the_stats_page_shows_label_completion_per_tenant(unsigned_default_tenant, submit, settings):
    from django.contrib.auth.models import User

    VerifyParams.objects.filter(is_active=True).update(audit_rate=1.0, bootstrap_audit_rate=1.0)
    reset_config_memos()
    first, *_ = _audited(submit, 3)
    PcsRecord.objects.update(received_at=timezone.now() - timedelta(days=2, hours=5))
    calibration.expire_audits([("default", first)])
    client = logged_in(User.objects.create_user("alice", is_staff=True))

    page = client.get("/review/stats/").content.decode()
    row = page[page.index("<td>default</td>") :].split("</tr>", 1)[0]
    assert "0 labelled · 1 expired · 2 waiting (oldest 2 d 5 h)" in row
