"""The stats page: queue depth, labels today per reviewer, escalation and reject rates, calibration state."""

from __future__ import annotations

from calibration import services as calibration
from calibration.models import DriftReport
from flk_site.testing import logged_in, make_pcs, reset_config_memos


def test_stats_show_depth_labels_rates_and_calibration(
    make_user, queue_items, submit, unsigned_default_tenant, settings
):
    from calibration.tasks import recalibrate
    from policy.models import VerifyParams

    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    VerifyParams.objects.filter(is_active=True).update(
        audit_rate=0.0, bootstrap_audit_rate=0.0
    )  # no PCS is an audit sample
    reset_config_memos()
    for _ in range(3):
        submit(make_pcs())  # accepted
    submit(make_pcs(degraded=True))  # escalated: 1 of 4 PCS of the tenant today
    for i in range(5):
        calibration.record_label(tenant="default", pcs_id=f"cal-{i}", score=i / 10, label="benign", provenance="audit")
    recalibrate(tenant="default")
    calibration.snapshot_memo.clear()
    DriftReport.objects.create(tenant="default", n_labels=60, martingale=500.0, martingale_max=500.0, p_value=0.002,
                               level=0.01, drift_detected=True)  # fmt: skip
    alice = logged_in(make_user("alice"))
    item_id = int(alice.post("/review/next/")["Location"].rstrip("/").rsplit("/", 1)[1])
    alice.post(f"/review/item/{item_id}/label/", {"label": "anomalous"})
    queue_items(2)  # two more waiting

    page = alice.get("/review/stats/").content.decode()
    assert '<strong id="queue-depth">2</strong>' in page
    assert '<strong id="labelled-today">1</strong>' in page
    assert "alice: 1" in page
    row = page[page.index("<td>default</td>") :].split("</tr>", 1)[0]
    assert "<td>2</td><td>6</td>" in row.replace("\n", "").replace("  ", "")  # waiting, PCS in 24 h
    assert "<td>50 %</td>" in row  # escalated: 3 of 6 (the two queued items are stored escalations too)
    assert "<td>0 %</td>" in row  # rejected
    assert "<td>5</td>" in row  # calibration n
    assert "drift" in row and "0.002" in row
