"""The nonconformity score follows the reference formula and its clamps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration.scoring import nonconformity_score


def test_a_typical_sticky_pcs_scores_low_and_a_degenerate_one_high():
    assert nonconformity_score(3.5, 1.05, 0.65) == pytest.approx(0.0)
    assert nonconformity_score(0.0, 0.0, 0.0) == pytest.approx(0.35 + 0.40 + 0.25)


def test_each_term_matches_the_formula():
    # 0.35·(1 − 1.75/3.5) + 0.40·(1 − 0.525/1.05) + 0.25·min(1, 0.325/0.65)
    assert nonconformity_score(1.75, 0.525, 0.975) == pytest.approx(0.175 + 0.2 + 0.125)


def test_out_of_range_signals_are_clamped():
    assert nonconformity_score(9.0, 2.0, 0.65) == nonconformity_score(3.5, 1.05, 0.65)
    assert nonconformity_score(-1.0, -0.5, 5.0) == nonconformity_score(0.0, 0.0, 5.0)
    assert nonconformity_score(1.0, 0.5, 5.0) == nonconformity_score(1.0, 0.5, 1.3)  # |r−r0|/r0 capped at 1


@given(st.floats(-5, 10), st.floats(-1, 3), st.floats(0, 1))
def test_the_score_stays_within_the_sum_of_the_weights(d_hat, coh, r):
    assert 0.0 <= nonconformity_score(d_hat, coh, r) <= 1.0 + 1e-12


def test_the_weights_and_r0_come_from_the_parameters():
    assert nonconformity_score(0.0, 1.05, 0.65, w_d=1.0, w_coh=0.0, w_r=0.0) == pytest.approx(1.0)
    assert nonconformity_score(3.5, 1.05, 0.3, r0=0.6) == pytest.approx(0.25 * 0.5)
