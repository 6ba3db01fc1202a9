"""D̂ and r see the structure of a cloud in high dimensions, whatever its length (issue 20, items 1 and 2)."""

from __future__ import annotations

import numpy as np
import pytest

from agent_client import signals
from agent_client.builder import build_pcs

DIMS = 384  # a sentence embedding's width


def embedded(latent: np.ndarray, seed: int, noise: float = 1e-3) -> np.ndarray:
    """``latent`` (points x k) mapped linearly into 384 dimensions, with isotropic noise in all of them."""
    rng = np.random.default_rng(seed)
    cloud = latent @ rng.standard_normal((latent.shape[1], DIMS))
    return cloud + noise * rng.standard_normal(cloud.shape)


def test_a_line_in_384_dimensions_has_dimension_one():
    t = np.random.default_rng(1).random((5000, 1))
    pcs = build_pcs(shard_id="s", epoch=0, points=embedded(t, 1))
    assert pcs["D_hat"] == pytest.approx(1.0, abs=0.15)


def test_a_plane_in_384_dimensions_has_dimension_two():
    square = np.random.default_rng(2).random((20_000, 2))
    pcs = build_pcs(shard_id="s", epoch=0, points=embedded(square, 2))
    assert pcs["D_hat"] == pytest.approx(2.0, abs=0.3)


def test_a_curved_3d_manifold_in_384_dimensions_has_dimension_three():
    # A flat 3-torus (three angles, each as a circle) embedded in 384 dimensions: curved, intrinsically 3-D.
    angles = np.random.default_rng(3).random((40_000, 3)) * 2 * np.pi
    torus = np.concatenate([np.cos(angles), np.sin(angles)], axis=1)
    # 32**3 boxes at scale 32 would need far more than 40 000 points to fill: the scales stop at 16.
    pcs = build_pcs(shard_id="s", epoch=0, points=embedded(torus, 3), scales=[2, 4, 8, 16])
    # 2.57: box counting at 40 000 points still undercounts the finest boxes of a curved 3-D set.
    assert 2.4 < pcs["D_hat"] < 3.2
    circle = build_pcs(shard_id="s", epoch=0, points=embedded(torus[:, [0, 3]], 3), scales=[2, 4, 8, 16])
    assert pcs["D_hat"] > circle["D_hat"] + 1.0


def test_isotropic_noise_alone_does_not_look_like_a_low_dimensional_set():
    noise = np.random.default_rng(4).standard_normal((20_000, DIMS))
    assert signals.dimension(noise, dims=3)[0] > 2.0


def test_counting_in_every_coordinate_of_384_finds_almost_no_structure():
    # What the principal axes are for: almost every point alone in its box at every scale, so the slope is ~0.
    square = embedded(np.random.default_rng(5).random((2000, 2)), 5)
    assert signals.dimension(square)[0] < 0.3
    assert signals.dimension(square, dims=3)[0] > 1.5


def test_clouds_of_three_dimensions_or_fewer_are_counted_as_they_are():
    cloud = np.random.default_rng(6).random((3000, 3))
    assert np.array_equal(signals.principal_image(cloud), cloud)


def test_the_principal_image_does_not_depend_on_the_order_of_the_points():
    cloud = embedded(np.random.default_rng(7).random((500, 2)), 7)
    order = np.random.default_rng(8).permutation(len(cloud))
    assert signals.dimension_counts(cloud) == signals.dimension_counts(cloud[order])


@pytest.mark.parametrize("period", [1, 2, 4, 8])
def test_at_32_points_a_repeated_pattern_has_a_clearly_lower_r_than_varied_points(period):
    rng = np.random.default_rng(period)
    varied = rng.standard_normal((32, DIMS))
    repeated = np.tile(rng.standard_normal((period, DIMS)), (32 // period, 1))
    r_varied = signals.compressibility_embeddings(varied, seed=1)
    r_repeated = signals.compressibility_embeddings(repeated, seed=1)
    assert r_varied > 0.45  # 8 codes: about 3 bits per code, and zlib's overhead on 256 bytes
    assert r_repeated < r_varied - 0.25


def test_r_of_varied_points_does_not_grow_with_the_number_of_points():
    rng = np.random.default_rng(11)
    values = [signals.compressibility_embeddings(rng.standard_normal((n, DIMS)), seed=1) for n in (64, 256, 1024)]
    # 8 codes per block at every length: the ratio settles to the entropy of the codes, not to the count.
    assert max(values) - min(values) < 0.1


def test_the_number_of_codes_stays_well_under_the_number_of_points():
    assert [signals.pq_codes_for(n) for n in (2, 5, 32, 33, 10_000)] == [2, 2, 8, 8, 8]
