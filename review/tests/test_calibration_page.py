"""The calibration pages: staff see per tenant n and threshold over time, audit p-values, monitors and power."""

from __future__ import annotations

import random
import re

import pytest
from django.test import Client

from calibration import services as calibration
from calibration.tasks import check_drift, check_miscoverage, recalibrate
from flk_site.testing import ensure_defaults, logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def calibrated_acme():
    """acme: 150 benign audit labels (p-values spread), 20 anomalous ones (half caught), recalibrated, monitored."""
    ensure_defaults()
    rng = random.Random(3)
    for n in range(150):
        signals = {"D_hat": 1.2, "coh_star": rng.uniform(0.7, 0.95), "r": rng.uniform(0.5, 0.8)}
        p = rng.random()
        calibration.record_label(
            tenant="acme", pcs_id=f"b{n}", label="benign", provenance="audit", signals=signals,
            inclusion_probability=0.2, decision="accept" if p > 0.05 else "escalate", p_value=p,
            flagged=p <= 0.05, snapshot_n=150, delta=0.05,
        )  # fmt: skip
    for n in range(20):
        signals = {"D_hat": 0.3, "coh_star": 0.2, "r": 0.1}
        calibration.record_label(
            tenant="acme", pcs_id=f"a{n}", label="anomalous", provenance="audit", signals=signals,
            inclusion_probability=0.2, decision="escalate" if n % 2 else "accept", p_value=0.01, flagged=True,
            snapshot_n=150, delta=0.05,
        )  # fmt: skip
    recalibrate()
    check_miscoverage()
    check_drift()


def test_staff_see_every_figure_of_a_tenant(make_user, calibrated_acme):
    page = logged_in(make_user("sam", staff=True)).get("/review/calibration/acme/")
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(r'id="calibration-n">n = 150 \(own set\), threshold 0\.\d{4}', html)
    estimate = calibration.miscoverage_estimate("acme", since=calibration._window_start(), default_delta=0.05)
    assert f"{estimate.flagged} of 150 = " in html and "against delta 0.05" in html
    assert 'id="power">0.500, 95 % interval [' in html  # 10 of 20 anomalous audit samples were not accepted
    assert "from 20 audit labels" in html
    assert 'id="drift">martingale ' in html and "(alarm at 100)" in html
    # Four charts with labelled axes, and the histogram's uniform reference line.
    assert html.count('<svg class="chart"') == 5
    for axis in ("calibration n", "threshold (score)", "conformal p-value at ingest", "false-escalation rate",
                 "test martingale", "time (UTC)"):  # fmt: skip
        assert f">{axis}</text>" in html
    assert "uniform: 7.5" in html  # 150 p-values in 20 bins
    assert 'class="tick"' in html


def test_the_index_lists_calibrated_tenants_with_completion(make_user, calibrated_acme):
    html = logged_in(make_user("sam", staff=True)).get("/review/calibration/").content.decode()
    assert 'href="/review/calibration/acme/"' in html
    assert "<td>150</td>" in html and "<td>own</td>" in html


def test_reviewers_who_are_not_staff_are_refused(make_user, calibrated_acme):
    client = logged_in(make_user("rita", staff=False))
    assert client.get("/review/calibration/").status_code == 403
    assert client.get("/review/calibration/acme/").status_code == 403


def test_staff_restricted_to_other_tenants_do_not_see_this_one(make_user, calibrated_acme):
    client = logged_in(make_user("sam", staff=True, tenants=["other"]))
    assert client.get("/review/calibration/acme/").status_code == 404
    assert "acme" not in client.get("/review/calibration/").content.decode()


def test_an_unknown_tenant_is_404_and_anonymous_users_log_in_first(make_user, calibrated_acme):
    assert logged_in(make_user("sam", staff=True)).get("/review/calibration/nobody/").status_code == 404
    response = Client().get("/review/calibration/acme/")
    assert response.status_code == 302 and "/login" in response["Location"]
