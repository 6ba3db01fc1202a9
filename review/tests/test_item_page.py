"""The item page shows the signals, reasons, the scaling plot, the score against the threshold and the PCS."""

from __future__ import annotations

from calibration import services as calibration
from flk_site.testing import logged_in


def _open_next(make_user):
    client = logged_in(make_user("alice"))
    return client.get(client.post("/review/next/")["Location"]).content.decode()


def test_the_item_page_shows_reasons_plot_and_pcs(make_user, queue_items):
    (item,) = queue_items(1)
    page = _open_next(make_user)
    assert "<code>degraded</code>" in page
    assert '<svg class="scaling-plot"' in page
    assert 'class="fit-claimed"' in page and 'class="fit-recomputed"' in page
    assert page.count('class="point"') == len(item.record.body["scales"])
    assert item.record.body["merkle_root"] in page  # the formatted PCS


def test_the_score_is_shown_against_the_tenants_threshold(make_user, queue_items):
    from calibration.tasks import recalibrate

    for i in range(30):
        calibration.record_label(tenant="default", pcs_id=f"cal-{i}", score=i / 100, label="benign", provenance="audit")
    recalibrate(tenant="default")
    calibration.snapshot_memo.clear()
    snap = calibration.current_snapshot("default")
    assert snap is not None and snap.n == 30 and snap.threshold != float("inf")
    queue_items(1, score=0.9)
    page = _open_next(make_user)
    assert f"threshold <strong>{snap.threshold:.4f}</strong>" in page
    assert "above" in page


def test_earlier_labels_of_the_same_shard_are_listed(make_user, queue_items, settings):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    earlier, later = queue_items(2, shard_id="shard-A")
    client = logged_in(make_user("alice"))
    client.post("/review/next/")
    client.post(f"/review/item/{earlier.pk}/label/", {"label": "anomalous", "note": "replayed events"})
    page = client.get(client.post("/review/next/")["Location"]).content.decode()
    assert f"/review/item/{later.pk}/" in client.post("/review/next/")["Location"]
    assert "replayed events" in page and "anomalous" in page
