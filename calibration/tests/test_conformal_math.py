"""conformal_threshold and p_value agree with a brute-force reading of their definitions, ties included."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration.conformal import conformal_threshold, p_value

# Few distinct values so that ties are common.
tied_scores = st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.25, 0.5, 0.75, 1.0]), min_size=0, max_size=60)
any_scores = st.lists(st.floats(min_value=-10, max_value=10, allow_nan=False), min_size=0, max_size=200)
deltas = st.sampled_from([0.005, 0.01, 0.05, 0.1, 0.2, 0.25, 0.5, 0.9])


def brute_threshold(scores, delta):
    n = len(scores)
    # The smallest rank k with k >= (n+1)(1-delta), found by counting instead of by ceil.
    k = next(k for k in range(1, n + 3) if k >= round((n + 1) * (1 - delta), 9))
    return math.inf if k > n else sorted(scores)[k - 1]


def brute_p_value(scores, s):
    return (1 + sum(1 for x in scores if x >= s)) / (len(scores) + 1)


@given(st.one_of(tied_scores, any_scores), deltas)
def test_the_threshold_is_the_conformal_order_statistic(scores, delta):
    assert conformal_threshold(scores, delta) == brute_threshold(scores, delta)


@given(st.one_of(tied_scores, any_scores), st.one_of(st.sampled_from([0.0, 0.25, 1.0]), st.floats(-11, 11)))
def test_the_p_value_counts_every_score_at_least_s(scores, s):
    assert p_value(scores, s) == brute_p_value(scores, s)


@given(st.one_of(tied_scores, any_scores), deltas, st.one_of(st.sampled_from([0.0, 0.25, 1.0]), st.floats(-11, 11)))
def test_a_score_is_escalated_exactly_when_it_exceeds_the_threshold(scores, delta, s):
    assert (p_value(scores, s) <= delta) == (s > conformal_threshold(scores, delta))


def test_ties_with_the_new_score_count_against_escalation():
    assert p_value([0.2, 0.5, 0.5, 0.5], 0.5) == 4 / 5
    assert conformal_threshold([0.5] * 19, 0.05) == 0.5


def test_the_threshold_is_infinite_when_the_rank_exceeds_n():
    assert conformal_threshold([0.1] * 18, 0.05) == math.inf  # ceil(19 * 0.95) = 19 > 18
    assert conformal_threshold([0.1] * 19, 0.05) == 0.1  # (n+1)(1-delta) = 19 exactly: no float round-up


def test_unsorted_scores_give_the_same_answers():
    scores = [0.9, 0.1, 0.5, 0.3, 0.7]
    assert p_value(scores, 0.4) == p_value(sorted(scores), 0.4) == 4 / 6
    assert conformal_threshold(scores, 0.2) == 0.9


@pytest.mark.parametrize("delta", [0.0, 1.0, -0.1, 1.5])
def test_a_delta_outside_the_open_unit_interval_is_refused(delta):
    with pytest.raises(ValueError):
        conformal_threshold([0.1, 0.2], delta)
