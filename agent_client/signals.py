"""The three PCS signals computed from an agent's data: D̂ (box counting), coh★ and v★, and r.

Everything is vectorised with numpy: no Python loop runs over points or directions, so a 10 000 x 768
cloud takes milliseconds. Every random choice comes from a generator seeded with the PCS's ``seed``, so
the same data and seed give the same signals on every run.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent_client.dimension import theil_sen_dhat

DEFAULT_SCALES = (2, 4, 8, 16, 32)


def _as_cloud(points: Any) -> np.ndarray:
    cloud = np.asarray(points, dtype=np.float64)
    if cloud.ndim == 1:
        cloud = cloud[:, None]
    if cloud.ndim != 2:
        raise ValueError(f"a point cloud is a 2-D array (points x dimensions), got {cloud.ndim} dimensions")
    if not np.isfinite(cloud).all():
        raise ValueError("the point cloud contains NaN or infinite values")
    return cloud


def normalise_to_unit_cube(points: Any) -> np.ndarray:
    """Map each coordinate to [0, 1] by its own min and max; a constant coordinate becomes 0."""
    cloud = _as_cloud(points)
    if len(cloud) == 0:
        return cloud
    low = cloud.min(axis=0)
    span = cloud.max(axis=0) - low
    return (cloud - low) / np.where(span > 0, span, 1.0)


def box_counts(points: Any, scales: Sequence[int] = DEFAULT_SCALES) -> dict[int, int]:
    """N_j for each scale: the number of distinct non-empty cells of side 1/scale that hold a point.

    The cloud is first normalised to the unit cube; a point on the upper face falls in the last cell.
    """
    unit = normalise_to_unit_cube(points)
    counts: dict[int, int] = {}
    for scale in scales:  # a handful of scales; each one is a single vectorised pass over the points
        cells = np.minimum(np.floor(unit * scale), scale - 1).astype(np.int64)
        # Each row of cell indices viewed as one opaque byte string, so np.unique compares whole rows at once.
        rows = np.ascontiguousarray(cells).view(np.dtype((np.void, cells.dtype.itemsize * cells.shape[1])))
        counts[int(scale)] = len(np.unique(rows)) if len(cells) else 0
    return counts


def dimension(points: Any, scales: Sequence[int] = DEFAULT_SCALES) -> tuple[float, dict[int, int]]:
    """D̂ of the cloud (Theil–Sen over log2 N_j against log2 scale) and the box counts it came from."""
    counts = box_counts(points, scales)
    return theil_sen_dhat(list(scales), {str(s): n for s, n in counts.items()}), counts


def random_directions(count: int, dims: int, seed: int) -> np.ndarray:
    """``count`` unit vectors drawn uniformly on the sphere in ``dims`` dimensions (normalised Gaussians)."""
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal((count, dims))
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def _histogram_counts(proj: np.ndarray, bins: int) -> np.ndarray:
    """Per-row B-bin histograms of ``proj`` (directions x points), binned exactly as np.histogram does.

    Each row gets bins spanning its own min..max (widened by 0.5 on each side when constant, as
    np.histogram does), with edges from the same np.linspace call; the two correction passes reproduce
    np.histogram's handling of values that land on an edge through floating-point rounding, so the counts
    equal a per-row np.histogram call bit for bit.
    """
    m = proj.shape[0]
    first = proj.min(axis=1)
    last = proj.max(axis=1)
    flat = first == last
    first = np.where(flat, first - 0.5, first)[:, None]
    last = np.where(flat, last + 0.5, last)[:, None]
    edges = np.linspace(first, last, bins + 1, axis=1).ravel()  # row k's edges at k*(bins+1) ...
    idx = ((proj - first) * (bins / (last - first))).astype(np.intp)
    np.minimum(idx, bins - 1, out=idx)  # the maximum itself belongs to the last bin
    row_edges = (np.arange(m) * (bins + 1))[:, None]
    idx -= proj < edges.take(idx + row_edges)
    idx += (proj >= edges.take(idx + row_edges + 1)) & (idx != bins - 1)
    flat_bins = idx + (np.arange(m) * bins)[:, None]
    return np.bincount(flat_bins.ravel(), minlength=m * bins).reshape(m, bins)


def coherence(points: Any, directions: int = 100, bins: int = 20, seed: int = 0) -> tuple[float, list[float]]:
    """coh★ and v★: the largest share of points that fall in one of ``bins`` bins of a projection.

    ``directions`` unit vectors are drawn from a generator seeded with ``seed``; the cloud is projected on
    all of them with one matrix product; each projection is cut into ``bins`` equal bins between its min
    and max. coh★ is the largest bin fraction over all directions and v★ the direction that achieved it
    (the first one on a tie). A cloud with fewer than one point has coh★ 0 and no v★.
    """
    cloud = _as_cloud(points)
    if len(cloud) == 0 or cloud.shape[1] == 0:
        return 0.0, []
    units = random_directions(directions, cloud.shape[1], seed)
    counts = _histogram_counts(units @ cloud.T, bins)  # one product for all directions
    best_per_direction = counts.max(axis=1)
    winner = int(np.argmax(best_per_direction))
    return float(best_per_direction[winner]) / len(cloud), units[winner].tolist()


def coherence_loop(points: Any, directions: int = 100, bins: int = 20, seed: int = 0) -> tuple[float, list[float]]:
    """The same coh★ and v★ as ``coherence`` with one np.histogram call per direction (the reference)."""
    cloud = _as_cloud(points)
    if len(cloud) == 0 or cloud.shape[1] == 0:
        return 0.0, []
    units = random_directions(directions, cloud.shape[1], seed)
    best, winner = -1, 0
    for k in range(directions):
        hist, _ = np.histogram(cloud @ units[k], bins=bins)
        if hist.max() > best:
            best, winner = int(hist.max()), k
    return best / len(cloud), units[winner].tolist()


def epsilon_net_guarantee(
    dims: int, points: int, directions: int, bins: int, epsilon: float = 0.1, delta: float = 0.05
) -> dict[str, Any]:
    """What M random directions guarantee about coh★ (seed section 19.3), as metadata.

    An ε-net of the unit sphere S^(d-1) needs at most N(ε) = (1 + 2/ε)^d caps of radius ε. M uniform
    directions hit every cap with probability ≥ 1 − δ once M ≥ N·ln(N/δ); then the sampled coh★ is within
    L·ε of the true maximum, with L = 2·√n / B the Lipschitz bound of the bin fraction in the direction.
    The numbers grow as a power of d, so they are reported through their logarithm and as floats (inf when
    they overflow); in high dimension the guarantee is honestly reported as not met.
    """
    log_cover = dims * math.log1p(2.0 / epsilon)
    log_required = log_cover + math.log(log_cover - math.log(delta))
    lipschitz = 2.0 * math.sqrt(max(points, 0)) / bins
    return {
        "epsilon": epsilon,
        "delta": delta,
        "covering_number": math.exp(log_cover) if log_cover < 700 else math.inf,
        "log10_covering_number": log_cover / math.log(10),
        "required_samples": math.ceil(math.exp(log_required)) if log_required < 700 else math.inf,
        "directions": directions,
        "lipschitz": lipschitz,
        "approximation_error": min(1.0, lipschitz * epsilon),
        "guarantee_met": log_required < 700 and directions >= math.exp(log_required),
    }


def coherence_with_guarantees(
    points: Any, directions: int = 100, bins: int = 20, seed: int = 0, epsilon: float = 0.1, delta: float = 0.05
) -> tuple[float, list[float], dict[str, Any]]:
    """``coherence`` plus the ε-net metadata of ``epsilon_net_guarantee`` for this cloud."""
    cloud = _as_cloud(points)
    coh, v_star = coherence(cloud, directions, bins, seed)
    meta = epsilon_net_guarantee(cloud.shape[1], len(cloud), directions, bins, epsilon, delta)
    return coh, v_star, meta


def compressibility_bytes(data: bytes) -> float:
    """r: the zlib (level 9) compressed size over the raw size, clamped to [0, 1]; 1 means incompressible."""
    if not data:
        raise ValueError("cannot measure the compressibility of empty data")
    return min(1.0, max(0.0, len(zlib.compress(data, 9)) / len(data)))


def product_quantise(embeddings: Any, subspaces: int = 8, codes: int = 256, seed: int = 0) -> np.ndarray:
    """PQ codes (points x subspaces, uint8 for ≤ 256 codes): seeded k-means in each block of coordinates."""
    from scipy.cluster.vq import kmeans2  # only the embedding path needs scipy

    cloud = _as_cloud(embeddings)
    n, dims = cloud.shape
    if n < 2 or dims < subspaces:
        raise ValueError(f"product quantisation needs ≥ 2 points and ≥ {subspaces} dimensions, got {n} x {dims}")
    k = min(codes, n)
    rng = np.random.default_rng(seed)
    out = np.empty((n, subspaces), dtype=np.uint8 if k <= 256 else np.uint16)
    for j, block in enumerate(np.array_split(cloud, subspaces, axis=1)):  # 8 subspaces, each vectorised
        with warnings.catch_warnings():
            # Repetitive data has fewer distinct vectors than codes: empty clusters are expected, not an error.
            warnings.simplefilter("ignore", UserWarning)
            _, labels = kmeans2(block, k, iter=10, minit="points", rng=rng)
        out[:, j] = labels
    return out


def compressibility_embeddings(embeddings: Any, subspaces: int = 8, codes: int = 256, seed: int = 0) -> float:
    """r of embeddings: product-quantise them to a finite alphabet, then LZ (zlib) on the code stream."""
    return compressibility_bytes(product_quantise(embeddings, subspaces, codes, seed).tobytes())
