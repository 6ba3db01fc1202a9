"""coh★ and v★: concentrated clouds score high, the result is reproducible and matches np.histogram."""

from __future__ import annotations

import numpy as np
import pytest

from agent_client.signals import coherence, coherence_loop, coherence_with_guarantees


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


def test_epsilon_net_metadata_says_when_the_guarantee_holds():
    cloud = np.random.default_rng(7).random((100, 2))
    _, _, few = coherence_with_guarantees(cloud, directions=100)
    _, _, many = coherence_with_guarantees(cloud, directions=5000)
    assert few["covering_number"] == pytest.approx(441.0)
    assert few["required_samples"] > 100 and not few["guarantee_met"]
    assert many["guarantee_met"]
    _, _, high = coherence_with_guarantees(np.random.default_rng(8).random((100, 768)))
    assert high["guarantee_met"] is False and high["log10_covering_number"] > 1000
