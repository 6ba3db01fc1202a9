"""coh★ and v★: concentrated clouds score high, the result is reproducible and matches np.histogram."""

from __future__ import annotations

import multiprocessing
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import ThreadpoolController

from agent_client import signals
from agent_client.signals import (
    _bin_keys,
    _certain,
    _column_extreme,
    _float32_projections,
    _largest_bin_bounds,
    _Projections,
    coherence,
    coherence_loop,
    coherence_with_guarantees,
    random_directions,
)


def test_clustered_points_have_high_coherence():
    rng = np.random.default_rng(4)
    cluster = rng.normal(0.0, 0.001, size=(950, 16))
    spread = rng.uniform(-10, 10, size=(50, 16))
    coh, v_star = coherence(np.vstack([cluster, spread]))
    assert coh >= 0.9
    assert np.linalg.norm(v_star) == pytest.approx(1.0)


def test_a_uniform_cloud_has_low_coherence():
    coh, _ = coherence(np.random.default_rng(5).random((5000, 16)))
    assert coh < 0.3


def test_the_same_seed_gives_the_same_result_and_another_seed_other_directions():
    cloud = np.random.default_rng(6).standard_normal((2000, 32))
    assert coherence(cloud, seed=11) == coherence(cloud, seed=11)
    assert coherence(cloud, seed=11)[1] != coherence(cloud, seed=12)[1]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_vectorised_coherence_equals_a_per_direction_histogram_loop(seed):
    rng = np.random.default_rng(100 + seed)
    clouds = [
        rng.standard_normal((3000, 64)),
        np.round(rng.standard_normal((2000, 3)), 1),  # many ties on bin edges
        np.vstack([np.zeros((500, 4)), rng.random((10, 4))]),
    ]
    for cloud in clouds:
        assert coherence(cloud, directions=50, bins=13, seed=seed) == coherence_loop(
            cloud, directions=50, bins=13, seed=seed
        )


def test_a_single_repeated_point_is_fully_coherent():
    coh, _ = coherence(np.ones((100, 5)))
    assert coh == 1.0


def test_points_apart_by_a_rounding_step_only_are_fully_coherent_where_np_histogram_refuses():
    huge = 1e30
    ulp_apart = np.array([huge, np.nextafter(huge, np.inf)] * 10)[:, None]
    with pytest.raises(ValueError, match="finite-sized bins"):
        np.histogram(ulp_apart[:, 0], bins=20)
    assert coherence(ulp_apart, directions=4, bins=20, seed=3)[0] == 1.0
    assert coherence(ulp_apart, directions=4, bins=20, seed=3) == coherence_loop(ulp_apart, 4, 20, 3)
    equal_rows_beside_a_huge_coordinate = np.array([[huge, 1.0, 2.0]] * 20)
    assert coherence(equal_rows_beside_a_huge_coordinate)[0] == 1.0
    assert coherence(equal_rows_beside_a_huge_coordinate) == coherence_loop(equal_rows_beside_a_huge_coordinate)


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_a_seed_that_is_not_a_non_negative_integer_is_named(seed):
    with pytest.raises(ValueError, match=r"the seed must be an integer ≥ 0 \(the PCS's seed\), got"):
        coherence(np.random.default_rng(1).random((20, 3)), seed=seed)


def test_epsilon_net_metadata_says_when_the_guarantee_holds():
    cloud = np.random.default_rng(7).random((100, 2))
    _, _, few = coherence_with_guarantees(cloud, directions=100)
    _, _, many = coherence_with_guarantees(cloud, directions=5000)
    assert few["covering_number"] == pytest.approx(441.0)
    assert few["required_samples"] > 100 and not few["guarantee_met"]
    assert many["guarantee_met"]
    _, _, high = coherence_with_guarantees(np.random.default_rng(8).random((100, 768)))
    assert high["guarantee_met"] is False and high["log10_covering_number"] > 1000


def _awkward_clouds(rng):
    """Clouds that put values on or near bin edges, or leave no range to bin at all."""
    lattice = rng.integers(-3, 4, size=(1500, 6)).astype(float)  # many projections tie exactly
    constant_column = rng.standard_normal((800, 5))
    constant_column[:, 2] = 7.25
    return [
        rng.standard_normal((3000, 64)),
        np.round(rng.standard_normal((2000, 3)), 1),  # many ties on bin edges
        np.vstack([np.zeros((500, 4)), rng.random((10, 4))]),
        lattice,
        constant_column,
        np.full((300, 8), 3.0),  # every point equal: every projection has a zero range
        np.zeros((50, 3)),
        np.ones((1, 10)),  # a single point
        np.array([[0.0, 0.0], [1.0, 1.0]]),
        rng.standard_normal(400),  # 1-D: one coordinate per point
        rng.standard_normal((600, 12)) * 1e-40,  # below float32's normal range
        rng.standard_normal((600, 12)) * 1e30,  # large, but still within float32
        np.vstack([rng.standard_normal((400, 6)) * 1e39, np.zeros((1, 6))]),  # beyond float32
        np.vstack([rng.standard_normal((400, 6)) * 1e-3 + 1e6, np.full((2, 6), 1e6)]),  # tiny spread, large offset
        np.repeat(rng.standard_normal((40, 16)), 25, axis=0),  # 40 distinct points, 25 copies each
    ]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
# Two directions share a counted key unless that makes too many counts: (30, 100) counts them one by one;
# an odd number of directions pairs the last with a phantom.
@pytest.mark.parametrize("directions,bins", [(50, 13), (100, 20), (7, 1), (30, 64), (30, 100), (9, 20)])
def test_coherence_is_exactly_the_loop_on_awkward_clouds(seed, directions, bins):
    for cloud in _awkward_clouds(np.random.default_rng(200 + seed)):
        expected = coherence_loop(cloud, directions=directions, bins=bins, seed=seed)
        assert coherence(cloud, directions=directions, bins=bins, seed=seed) == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_float32_cloud_is_projected_as_it_is_and_gives_exactly_the_loops_result(seed):
    rng = np.random.default_rng(250 + seed)
    large = (rng.standard_normal((500, 6)) * 1e19).astype(np.float32)  # squares beyond float32: the float64 way
    clouds = [
        *(cloud.astype(np.float32) for cloud in _awkward_clouds(rng) if np.abs(cloud).max() < 1e38),
        rng.standard_normal((3500, 40)).astype(np.float32),  # several slices, shared among threads
        np.asfortranarray(rng.standard_normal((2500, 9)).astype(np.float32)),  # not C-contiguous
        rng.standard_normal((2500, 20)).astype(np.float32)[:, ::2],  # a strided view
        rng.standard_normal((1200, 5)).astype(np.float16),
        large,
    ]
    for cloud in clouds:
        before = cloud.copy()
        expected = coherence_loop(cloud, directions=40, bins=20, seed=seed)
        assert coherence(cloud, directions=40, bins=20, seed=seed) == expected
        assert coherence(cloud.astype(np.float64), directions=40, bins=20, seed=seed) == expected
        assert np.array_equal(cloud, before, equal_nan=True)  # the caller's array is only read


def test_a_float32_cloud_with_nan_or_infinity_is_refused_like_the_loop():
    for bad in (np.nan, np.inf):
        cloud = np.ones((20, 3), dtype=np.float32)
        cloud[4, 1] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            coherence(cloud)
        with pytest.raises(ValueError, match="NaN or infinite"):
            coherence_loop(cloud)


@pytest.mark.parametrize("directions,bins", [(60, 20), (61, 20), (60, 100)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_float32_bounds_hold_the_loops_largest_bin_in_every_direction(seed, directions, bins):
    rng = np.random.default_rng(300 + seed)
    hair = np.concatenate([[0.0, 1.0], np.full(100, 0.25 - 1e-12)])  # 1e-12 below an edge, in bin 4
    clouds = [
        rng.standard_normal((4000, 300)),
        np.round(rng.standard_normal((3000, 5)), 1),
        np.concatenate([hair, np.full(60, 0.22), np.full(70, 0.27)]),  # float32 alone would say 170, not 160
        np.concatenate([hair, np.full(70, 0.22), np.full(60, 0.27)]),
    ]
    for cloud in clouds:
        cloud = cloud.reshape(len(cloud), -1)
        units = random_directions(directions, cloud.shape[1], seed)
        low, high = _largest_bin_bounds(_float32_projections(cloud, units), bins)
        exact = [np.histogram(cloud @ unit, bins=bins)[0].max() for unit in units]
        assert (low <= exact).all() and (exact <= high).all()


def test_coherence_rejects_non_finite_points_like_the_loop():
    for bad in (np.nan, np.inf, -np.inf):
        cloud = np.ones((20, 3))
        cloud[4, 1] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            coherence(cloud)
        with pytest.raises(ValueError, match="NaN or infinite"):
            coherence_loop(cloud)


def test_values_a_hair_below_an_edge_are_binned_as_the_loop_bins_them():
    # Bins of width 0.05 on [0, 1]: 100 points sit 1e-12 below the edge at 0.25, closer than float32 can
    # tell, so they belong to bin 4 (as np.histogram says) and make it the largest bin, not bin 5.
    cloud = np.concatenate([[0.0, 1.0], np.full(100, 0.25 - 1e-12), np.full(70, 0.22), np.full(60, 0.27)])
    expected = coherence_loop(cloud, directions=5, bins=20, seed=0)
    assert expected[0] == 170 / 232
    assert coherence(cloud, directions=5, bins=20, seed=0) == expected
    wide = np.column_stack([cloud, np.zeros_like(cloud), np.full_like(cloud, 2.5)])  # the same, in 3-D
    for seed in range(5):
        assert coherence(wide, directions=40, bins=20, seed=seed) == coherence_loop(wide, 40, 20, seed)


def test_a_value_on_an_edge_that_np_histogram_rounds_is_binned_as_the_loop_bins_it():
    # np.linspace(0, 1, 11)[3] is 0.30000000000000004, so np.histogram puts 0.3 in bin 2, although
    # 0.3 * 10 rounds to 3.0: neither float32 nor float64 arithmetic alone can place these 100 points.
    cloud = np.concatenate([[0.0, 1.0], np.full(100, 0.3), np.full(70, 0.25), np.full(60, 0.35)])
    expected = coherence_loop(cloud, directions=5, bins=10, seed=0)
    assert expected[0] == 170 / 232
    assert coherence(cloud, directions=5, bins=10, seed=0) == expected


def test_bin_keys_flag_values_near_interior_edges_and_never_near_the_outer_ones():
    # Four bins of width 1 from 0: positions are the values themselves, in doubt within 0.01 of an edge.
    values = np.array([0.0, 0.005, 0.5, 0.995, 1.0, 1.005, 2.5, 3.0, 3.995, 4.0], dtype=np.float32)
    keys = _bin_keys(values, np.float32(0), np.float32(1), np.float32(0.01))
    assert keys.tolist() == [0, 0, 0, 1, 1, 1, 4, 5, 7, 7]
    # 0 and 4 are outer edges: key 7 (between bin 3 and a bin 4 that does not exist) is bin 3 for sure.
    assert _certain(keys, 4).tolist() == [True, True, True, False, False, False, True, False, True, True]


def test_values_exactly_on_edges_and_piled_on_the_outer_edges_are_binned_as_the_loop_bins_them():
    rng = np.random.default_rng(400)
    # Edges at multiples of 1/8 are exact in binary for 4, 8 and 16 bins on [0, 1].
    cloud = np.concatenate(
        [np.zeros(90), np.ones(80), np.full(100, 0.25), np.full(60, 0.5), np.full(40, 0.875), rng.random(300)]
    )
    for bins in (4, 8, 16, 20):
        expected = coherence_loop(cloud, directions=4, bins=bins, seed=0)
        assert coherence(cloud, directions=4, bins=bins, seed=0) == expected
        low, high = _largest_bin_bounds(_float32_projections(cloud[:, None], np.ones((1, 1))), bins)
        exact = np.histogram(cloud, bins=bins)[0].max()
        assert low[0] <= exact <= high[0]
    ends = np.concatenate([np.zeros(90), np.ones(80), np.full(5, 0.4)])  # piled on the outer edges: no doubt
    low, high = _largest_bin_bounds(_float32_projections(ends[:, None], np.ones((1, 1))), 20)
    assert low.tolist() == high.tolist() == [90]


def test_a_direction_with_all_points_equal_gets_loose_bounds_and_leaves_the_others_exact():
    rng = np.random.default_rng(401)
    proj = np.column_stack([np.full(500, 2.5), rng.standard_normal(500), np.zeros(500)]).astype(np.float32)
    low, high = _largest_bin_bounds(_Projections(proj, 1e-6, 10.0, proj.min(axis=0), proj.max(axis=0)), 20)
    exact = np.histogram(proj[:, 1].astype(np.float64), bins=20)[0].max()
    assert low.tolist() == [0, exact, 0]
    assert high.tolist() == [500, exact, 500]


def test_bins_finer_than_float32_can_tell_apart_fall_back_to_the_loop():
    cloud = np.random.default_rng(402).standard_normal((200, 3))
    for bins in (300_000, 1 << 19):
        assert coherence(cloud, directions=3, bins=bins, seed=1) == coherence_loop(cloud, 3, bins, 1)


@pytest.mark.parametrize("rows", [1, 2, 3, 7, 8, 1001])
def test_column_extremes_are_the_min_and_max_of_each_column(rows):
    values = np.random.default_rng(rows).standard_normal((rows, 5)).astype(np.float32)
    assert _column_extreme(values, np.minimum).tolist() == values.min(axis=0).tolist()
    assert _column_extreme(values, np.maximum).tolist() == values.max(axis=0).tolist()


def test_a_large_cloud_beyond_float32_in_a_later_slice_is_binned_as_the_loop_bins_it():
    # Several slices of points, shared among threads: the one value beyond float32 is in the last.
    cloud = np.random.default_rng(403).standard_normal((3500, 8))
    cloud[3400, 2] = 1e39
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert coherence(cloud, directions=6, bins=20, seed=3) == coherence_loop(cloud, 6, 20, 3)


def test_keys_counted_a_few_at_a_time_give_the_same_bounds(monkeypatch):
    # Each thread gathers keys and counts them when its buffer is full: here after every chunk of points.
    cloud = np.random.default_rng(409).standard_normal((5500, 24))
    units = random_directions(11, 24, 4)
    whole = _largest_bin_bounds(_float32_projections(cloud, units), 20)
    monkeypatch.setattr(signals, "_COUNTED_KEYS", 1)
    in_parts = _largest_bin_bounds(_float32_projections(cloud, units), 20)
    assert [bound.tolist() for bound in in_parts] == [bound.tolist() for bound in whole]
    assert coherence(cloud, 11, 20, 4) == coherence_loop(cloud, 11, 20, 4)


def test_coherence_leaves_the_blas_thread_count_as_it_found_it_even_when_called_from_many_threads():
    blas = ThreadpoolController().select(user_api="blas")
    before = [library["num_threads"] for library in blas.info()]
    cloud = np.random.default_rng(404).standard_normal((4000, 64))
    expected = coherence_loop(cloud, 20, 20, 5)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: coherence(cloud, 20, 20, 5), range(8)))
    assert results == [expected] * 8
    assert [library["num_threads"] for library in blas.info()] == before


def test_a_single_threaded_blas_gives_the_same_coherence_as_the_threaded_one():
    cloud = np.random.default_rng(405).standard_normal((3500, 40))
    threaded = coherence(cloud, 30, 20, 6)
    with ThreadpoolController().limit(limits=1, user_api="blas"):  # as OPENBLAS_NUM_THREADS=1 would
        assert coherence(cloud, 30, 20, 6) == threaded == coherence_loop(cloud, 30, 20, 6)


def _coherence_in_child(queue) -> None:
    cloud = np.random.default_rng(406).standard_normal((2500, 16))
    queue.put(coherence(cloud, 10, 20, 2) == coherence_loop(cloud, 10, 20, 2))


def test_a_process_forked_while_a_thread_projects_computes_coherence_all_the_same():
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    cloud = np.random.default_rng(407).standard_normal((2500, 16))
    assert coherence(cloud, 10, 20, 2) == coherence_loop(cloud, 10, 20, 2)  # the parent's helper threads exist
    with signals._BLAS_LIMIT:  # another thread of the parent is in the middle of its projections
        child = context.Process(target=_coherence_in_child, args=(queue,))
        child.start()
    child.join(timeout=60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0
    assert queue.get(timeout=5) is True


def test_clouds_of_growing_and_shrinking_sizes_one_after_the_other_are_each_binned_as_the_loop_bins_them():
    # The threads keep their scratch memory from one call to the next: a smaller cloud after a larger one
    # works in part of it, a larger one after a smaller one in new memory, and neither sees the other's values.
    rng = np.random.default_rng(408)
    for rows, dims in [(3000, 48), (1200, 5), (4100, 130), (2, 3), (3000, 48)]:
        cloud = rng.standard_normal((rows, dims)) * rng.uniform(0.1, 50.0)
        assert coherence(cloud, 25, 17, rows) == coherence_loop(cloud, 25, 17, rows)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 2600),
    dims=st.integers(1, 24),
    kind=st.sampled_from(["normal", "rounded", "integers", "clustered", "offset"]),
    directions=st.integers(1, 41),
    bins=st.integers(1, 150),
)
def test_coherence_is_the_loop_and_the_bounds_hold_the_loops_counts_for_generated_clouds(
    seed, rows, dims, kind, directions, bins
):
    # Any number of directions (odd ones pair with a phantom) and of bins (many bins count one direction a key).
    rng = np.random.default_rng(seed)
    cloud = {
        "normal": lambda: rng.standard_normal((rows, dims)),
        "rounded": lambda: np.round(rng.standard_normal((rows, dims)), 1),  # many values on bin edges
        "integers": lambda: rng.integers(-3, 4, (rows, dims)).astype(np.float64),
        "clustered": lambda: rng.standard_normal((rows, dims)) * 0.01 + rng.integers(0, 3, (rows, 1)),
        "offset": lambda: rng.standard_normal((rows, dims)) * 1e-3 + 1e5,
    }[kind]()
    assert coherence(cloud, directions, bins, seed % 1000) == coherence_loop(cloud, directions, bins, seed % 1000)
    units = random_directions(directions, dims, seed % 1000)
    projected = _float32_projections(cloud, units)
    low, high = _largest_bin_bounds(projected, bins)
    exact = np.array([signals._direction_max(cloud, unit, bins) for unit in units])  # the loop's step
    assert (low <= exact).all() and (exact <= high).all()
