"""The guarantee in operation: benign PCS are escalated at a rate in [delta - 1/(n+1), delta] round after round.

The loop an operator runs: stationary benign traffic that passes every check goes through the submit path; a
reviewer claims and labels every item the queue hands out (all benign); ``manage.py recalibrate`` after each round;
the calibration set is small (FLK_CALIBRATION_MAX_SIZE) so each round's audit labels replace it. Before the audit
sample was drawn independently of the verdict, the share escalated climbed 0.000 0.062 0.117 0.166 ...

Tolerance, exact. With n calibration scores from a continuous distribution the conformal threshold is the k-th
smallest, k = ceil((n+1)(1-delta)), and the share of benign traffic above it is R ~ Beta(n+1-k, k) (mean
(n+1-k)/(n+1), inside [delta - 1/(n+1), delta]). The number escalated among m fresh benign PCS is then
BetaBinomial(m, n+1-k, k): the calibration set's own spread (sd ~ sqrt(delta(1-delta)/n)) plus the binomial
noise of the m PCS. Each round's count must fall in that distribution's central 1 - 2·TAIL region, and the total
over the calibrated rounds (independent: each round's set is drawn from the round before) in the region of the
convolution. TAIL = 1e-4 per side: a correct service fails one of these checks about once in 1,000 runs; the draws
are seeded, so a run is reproducible.

Scale: delta = 0.1 (not the default 0.05) and n = 100 so that the bias of a sample drawn among accepted PCS only
shows within a few small rounds (it grows by about delta(1 - delta) a round: 0.10 0.19 0.27 0.34 ...), and the
file runs in well under a minute.
"""

from __future__ import annotations

import math
import random
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from scipy import stats

from calibration import services as calibration
from calibration.models import CalibrationLabel, CalibrationSnapshot
from flk_site.testing import body
from flk_site.traffic import BENIGN, draw_pcs
from ingest.models import PcsRecord
from ingest.services import submit_pcs
from policy.models import VerifyParams
from policy.versions import activate_version, create_draft
from review.services import claim_next, label_item

pytestmark = pytest.mark.django_db(transaction=True)  # commits, so announcements and on_commit work as in operation

TENANT = "acme"
N = 100  # FLK_CALIBRATION_MAX_SIZE, and the default n_min
DELTA = 0.1
AUDIT_RATE = 0.4  # ~120 audit labels a round: each round's newest 100 replace the set
PER_ROUND = 300
TAIL = 1e-4


def escalated_count_law(n: int, delta: float, m: int) -> np.ndarray:
    """The probabilities of 0..m escalated among m fresh benign PCS against n exchangeable benign scores."""
    k = math.ceil((n + 1) * (1 - delta) - 1e-9)
    return stats.betabinom(m, n + 1 - k, k).pmf(np.arange(m + 1))


def central_region(pmf: np.ndarray, tail: float = TAIL) -> tuple[int, int]:
    """The smallest and largest counts outside the lower and upper ``tail`` of a distribution on 0..len-1."""
    cdf = np.cumsum(pmf)
    low = int(np.searchsorted(cdf, tail))  # P(X < low) < tail
    high = int(np.searchsorted(cdf, 1 - tail))  # P(X > high) <= tail
    return low, high


class Operation:
    """One tenant in operation: agents submit, a reviewer labels what the queue hands out, an operator recalibrates."""

    def __init__(self, reviewer, seed: int):
        self.reviewer = reviewer
        self.rng = np.random.default_rng(seed)
        self.round = 0

    def submit_round(self, count: int) -> list[str]:
        """``count`` benign PCS through ingest.services.submit_pcs; their decisions."""
        self.round += 1
        decisions = []
        for epoch in range(count):
            pcs = draw_pcs(self.rng, BENIGN, shard_id=f"round-{self.round}", epoch=epoch)
            answer = submit_pcs(TENANT, "application/json", body(pcs))
            assert answer.status in (200, 202), answer.body
            decisions.append(answer.body["decision"])
        return decisions

    def label_queue(self) -> int:
        """The reviewer claims and labels benign every item the queue hands out; how many."""
        labelled = 0
        while (item := claim_next(self.reviewer)) is not None:
            label_item(self.reviewer, item.pk, "benign")
            labelled += 1
        return labelled

    def recalibrate(self) -> str:
        out = StringIO()
        call_command("recalibrate", stdout=out)
        return out.getvalue()


def activate(reason: str, **changes: float) -> VerifyParams:
    """A new VerifyParams version (the active one with ``changes``), activated as an admin does."""
    active = VerifyParams.objects.get(is_active=True)
    return activate_version(create_draft({**active.param_values(), **changes}, reason, None).pk, None)


@pytest.fixture
def operation(make_tenant, settings, django_user_model, monkeypatch):
    settings.FLK_CALIBRATION_MAX_SIZE = N
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0  # one reviewer: a second opinion would wait for someone else
    # Each label schedules a debounced recalibration; with eager tasks it would run after every single label
    # (3x the cost of the file). The operator's `manage.py recalibrate` after each round is the same rebuild.
    monkeypatch.setattr(calibration, "schedule_recalibration", lambda tenant: None)
    make_tenant(TENANT, sign_alg="none")
    state = random.getstate()
    random.seed(19)  # the audit draw
    yield Operation(django_user_model.objects.create_user("reviewer", is_staff=True), seed=19)
    random.setstate(state)


def not_accepted(decisions: list[str]) -> int:
    return sum(decision != "accept" for decision in decisions)


def test_benign_escalation_stays_in_the_conformal_band_round_after_round(operation):
    activate("guarantee in operation", delta=DELTA, audit_rate=AUDIT_RATE, bootstrap_audit_rate=AUDIT_RATE)
    rounds = 5
    counts, sizes = [], []
    for _ in range(rounds):
        snapshot = calibration.current_snapshot(TENANT)
        sizes.append(snapshot.n if snapshot is not None else 0)
        counts.append(not_accepted(operation.submit_round(PER_ROUND)))
        operation.label_queue()
        operation.recalibrate()
    rates = " ".join(f"{c / PER_ROUND:.3f}" for c in counts)

    # Round 1 has no calibration yet (n < n_min): the checks alone decide, and every PCS passes them.
    assert sizes[0] == 0 and counts[0] == 0, rates
    # Every later round is decided by a full set of N benign audit scores of the round before.
    assert sizes[1:] == [N] * (rounds - 1), sizes
    law = escalated_count_law(N, DELTA, PER_ROUND)
    low, high = central_region(law)
    for round_no, count in enumerate(counts[1:], start=2):
        assert low <= count <= high, f"round {round_no}: {count}/{PER_ROUND} escalated, allowed {low}..{high}; {rates}"
    total = law
    for _ in range(rounds - 2):
        total = np.convolve(total, law)
    low, high = central_region(total)
    assert low <= sum(counts[1:]) <= high, f"{sum(counts[1:])} escalated in all, allowed {low}..{high}; {rates}"


def test_a_score_parameter_change_and_a_recalibration_keep_the_rate_in_the_band(operation):
    activate("guarantee in operation", delta=DELTA, audit_rate=AUDIT_RATE, bootstrap_audit_rate=AUDIT_RATE)
    operation.submit_round(PER_ROUND)
    operation.label_queue()
    operation.recalibrate()
    low, high = central_region(escalated_count_law(N, DELTA, PER_ROUND))
    before = not_accepted(operation.submit_round(PER_ROUND))
    assert low <= before <= high, f"{before}/{PER_ROUND} escalated under r0 0.65, allowed {low}..{high}"

    new = activate("r0 0.65 -> 0.55", r0=0.55)  # its on_commit rebuilds every snapshot under the new formula
    output = operation.recalibrate()  # and the operator's run finds nothing left to change
    assert f"{TENANT}: n={N} " in output and "labels without signals" not in output, output
    snapshot = CalibrationSnapshot.objects.filter(tenant=TENANT).latest("id")
    formula = calibration.params_provider()().formula
    assert (new.version, new.r0, snapshot.formula_key) == (snapshot.params_version, 0.55, formula.key)
    # The set's scores are its labels' signals scored under r0 = 0.55, not the scores they got at ingest.
    labels = CalibrationLabel.objects.filter(tenant=TENANT, provenance="audit").order_by("-labelled_at", "-id")[:N]
    assert snapshot.scores == sorted(formula.score(label.signals) for label in labels)

    after = not_accepted(operation.submit_round(PER_ROUND))
    assert low <= after <= high, f"{after}/{PER_ROUND} escalated under r0 0.55, allowed {low}..{high} (was {before})"


def test_a_new_tenant_reaches_n_min_through_the_bootstrap_audit_share(operation, client, settings):
    settings.FLK_CALIBRATION_MAX_SIZE = 5000  # the default cap: the set holds every label
    params = VerifyParams.objects.get(is_active=True)  # the defaults: 2 % audit, 20 % until n_min = 100
    assert (params.audit_rate, params.bootstrap_audit_rate, params.n_min) == (0.02, 0.2, 100)
    first = 650  # at 2 % alone these would give ~13 audit samples; at 20 % ~130
    for epoch in range(first):
        pcs = draw_pcs(operation.rng, BENIGN, shard_id="bootstrap", epoch=epoch)
        response = client.generic("POST", "/v1/pcs/submit", body(pcs), content_type="application/json",
                                  HTTP_X_TENANT_ID=TENANT)  # fmt: skip
        assert response.status_code == 200, response.content
    drawn = PcsRecord.objects.filter(tenant__name=TENANT, audit_sample=True).count()
    assert set(PcsRecord.objects.values_list("audit_probability", flat=True)) == {0.2}
    low, high = stats.binom(first, 0.2).ppf(TAIL), stats.binom(first, 0.2).isf(TAIL)
    assert low <= drawn <= high and drawn >= params.n_min, drawn

    assert operation.label_queue() == drawn
    operation.recalibrate()
    snapshot = calibration.current_snapshot(TENANT)
    assert (snapshot.source, snapshot.n) == ("own", drawn)

    # With its own set at n_min the tenant is audited at the ordinary share.
    for epoch in range(20):
        pcs = draw_pcs(operation.rng, BENIGN, shard_id="ordinary", epoch=epoch)
        client.generic("POST", "/v1/pcs/submit", body(pcs), content_type="application/json", HTTP_X_TENANT_ID=TENANT)
    later = PcsRecord.objects.filter(tenant__name=TENANT, shard_id="ordinary")
    assert set(later.values_list("audit_probability", flat=True)) == {0.02}
