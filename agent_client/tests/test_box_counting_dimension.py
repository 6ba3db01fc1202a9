"""D̂ by box counting recovers the dimension of simple shapes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from agent_client.signals import box_counts, dimension


def test_a_line_has_dimension_one():
    t = np.random.default_rng(1).random(5000)
    d_hat, _ = dimension(np.c_[t, 2 * t - 1, 0.5 * t])
    assert d_hat == pytest.approx(1.0, abs=0.1)


def test_a_filled_square_has_dimension_two():
    d_hat, _ = dimension(np.random.default_rng(2).random((50_000, 2)))
    assert d_hat == pytest.approx(2.0, abs=0.1)


def test_a_filled_cube_has_dimension_three():
    d_hat, _ = dimension(np.random.default_rng(3).random((200_000, 3)), scales=[2, 4, 8, 16])
    assert d_hat == pytest.approx(3.0, abs=0.1)


def test_counts_are_distinct_occupied_cells_after_normalising_to_the_unit_cube():
    # Four corners of a 10 x 10 square: one cell at scale 1, four at every finer scale.
    corners = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    assert box_counts(corners, [1, 2, 8]) == {1: 1, 2: 4, 8: 4}


def test_coordinates_further_apart_than_float64_holds_are_counted_as_the_same_shape_scaled_down():
    far = np.array([[1e308, -1e308], [-1e308, 1e308], [0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        assert box_counts(far, [2, 4, 8]) == box_counts(far / 1e300, [2, 4, 8]) == {2: 3, 4: 3, 8: 3}
