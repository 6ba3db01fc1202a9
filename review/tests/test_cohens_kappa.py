"""Cohen's kappa of two reviewers' labels, checked against hand-computed values."""

from __future__ import annotations

import pytest

from review.agreement import cohens_kappa

B, A = "benign", "anomalous"


def test_no_pairs_give_no_kappa():
    assert cohens_kappa([]) is None


def test_perfect_agreement_on_both_labels_is_one():
    assert cohens_kappa([(B, B), (A, A), (B, B)]) == pytest.approx(1.0)


def test_agreement_no_better_than_chance_is_zero():
    # Each rater says benign half the time, independently: p_o = 0.5 = p_e.
    assert cohens_kappa([(B, B), (B, A), (A, B), (A, A)]) == pytest.approx(0.0)


def test_systematic_disagreement_is_negative():
    assert cohens_kappa([(B, A), (A, B)]) == pytest.approx(-1.0)


def test_a_textbook_table():
    # 20 both benign, 5 benign/anomalous, 10 anomalous/benign, 15 both anomalous (n=50):
    # p_o = 35/50 = 0.7; p_e = (25*30 + 25*20) / 2500 = 0.5; kappa = 0.4.
    pairs = [(B, B)] * 20 + [(B, A)] * 5 + [(A, B)] * 10 + [(A, A)] * 15
    assert cohens_kappa(pairs) == pytest.approx(0.4)


def test_both_raters_always_using_one_label_count_as_full_agreement():
    assert cohens_kappa([(B, B), (B, B)]) == 1.0
