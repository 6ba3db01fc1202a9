"""The item page: a scaling plot with axes, ticks and hover values; signals beside the tenant's typical range."""

from __future__ import annotations

import re

from calibration import services as calibration
from flk_site.testing import logged_in


def _page(make_user, item) -> str:
    from django.contrib.auth.models import User

    client = logged_in(User.objects.filter(username="alice").first() or make_user("alice"))
    return client.get(f"/review/item/{item.pk}/").content.decode()


def test_the_plot_has_ticks_on_both_axes_and_values_on_every_point(make_user, queue_items):
    (item,) = queue_items(1)
    page = _page(make_user, item)
    plot = page.split('<svg class="scaling-plot"')[1].split("</svg>")[0]
    scales = item.record.body["scales"]
    x_labels = re.findall(r'class="tick-label x-tick"[^>]*>([^<]+)<', plot)
    assert x_labels and set(x_labels) <= {f"{s:g}" for s in scales}
    assert len(re.findall(r'class="tick-label y-tick"', plot)) >= 2
    titles = re.findall(r"<title>(scale [^<]+)</title>", plot)
    assert len(titles) == len(scales)
    first = scales[0]
    assert titles[0].startswith(f"scale {first} (log2 ") and f"N = {item.record.body['N_j'][str(first)]}" in titles[0]
    assert "scale (log2 axis)" in plot and "log2 N_j" in plot


def test_signals_are_shown_beside_the_tenants_typical_range_from_benign_audit_labels(make_user, queue_items):
    (item,) = queue_items(1, tenant="acme")
    page = _page(make_user, item)
    assert "too few yet" in page
    for i in range(40):
        signals = {"D_hat": 1.0 + i / 100, "coh_star": 0.7 + i / 1000, "r": 0.5}
        calibration.record_label(tenant="acme", pcs_id=f"{i:064x}", label="benign", provenance="audit",
                                 signals=signals, inclusion_probability=0.1)  # fmt: skip
    # Escalation labels and anomalous ones describe unusual traffic: they stay out of the typical range.
    calibration.record_label(tenant="acme", pcs_id="f" * 64, label="benign", provenance="escalation",
                             signals={"D_hat": 9.0, "coh_star": 0.1, "r": 0.1})  # fmt: skip
    page = _page(make_user, item)
    signals = page.split('<table class="kv signals">')[1].split("</table>")[0]
    assert "(40 labels)" in page
    d_hat_row = signals.split("<th>D̂ claimed</th>")[1].split("</tr>")[0]
    low, high = calibration.typical_signals("acme")["D_hat"].low, calibration.typical_signals("acme")["D_hat"].high
    assert f"{low:.3f} – {high:.3f}" in d_hat_row and 1.0 <= low < high <= 1.39
    outside = not (low <= item.record.d_hat <= high)
    assert ("<strong>outside</strong>" in d_hat_row) is outside


def test_a_blind_audit_item_shows_the_typical_range_but_still_no_verdict(make_user, queue_items):
    (item,) = queue_items(1, tenant="acme", audit_sample=True, decision="escalate", score=0.8765)
    for i in range(12):
        calibration.record_label(tenant="acme", pcs_id=f"{i:064x}", label="benign", provenance="audit",
                                 signals={"D_hat": 1.5, "coh_star": 0.8, "r": 0.5}, inclusion_probability=0.1)  # fmt: skip
    page = _page(make_user, item)
    assert "(12 labels)" in page and "1.500 – 1.500" in page
    assert 'id="decision"' not in page and "0.8765" not in page and "<code>degraded</code>" not in page
