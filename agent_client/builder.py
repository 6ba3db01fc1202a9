"""From an agent's data to a complete, signed PCS: signals, Merkle root, regime, budget, signature.

The builder is deterministic: the same data, shard, epoch and seed give the same PCS byte for byte (no
clock is read unless ``sent_at`` is given). When a signal cannot be computed from the data it says so in
``ft``: ``degraded`` is true and ``fallbacks`` names each signal and the value used instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from agent_client import PROTOCOL_VERSION, signals, signing
from agent_client.merkle import merkle_root
from agent_client.pcs import assemble_pcs, sign_pcs

MIN_POINTS_FOR_DIMENSION = 8  # fewer points cannot fill even the coarsest scales: D̂ would be noise
# v★ has one number per dimension; past this many the body would near the service's 64 KiB limit, so v★
# (a hint for a reader, not a signal the verdict uses) is left out rather than the PCS refused.
MAX_V_STAR = 2048


def point_leaves(points: Any) -> list[bytes]:
    """The Merkle leaves of a point cloud: each point's coordinates as little-endian float64 bytes."""
    cloud = np.ascontiguousarray(np.asarray(points, dtype="<f8"))
    if cloud.ndim == 1:
        cloud = cloud[:, None]
    return [row.tobytes() for row in cloud]


def build_pcs(
    *,
    shard_id: str,
    epoch: int,
    seed: int = 0,
    points: Any = None,
    data: bytes | None = None,
    chunks: Iterable[bytes] | None = None,
    embeddings: Any = None,
    scales: Sequence[int] = signals.DEFAULT_SCALES,
    directions: int = 100,
    bins: int = 20,
    alg: str = signing.NONE,
    key: bytes = b"",
    outbox_seq: int = 0,
    sent_at: datetime | None = None,
    version: str = PROTOCOL_VERSION,
    codebook: Any = None,
) -> dict[str, Any]:
    """A signed PCS for a piece of work, under protocol ``version`` ("0.2" signs every field, "0.1" eight).

    - ``points``: the point cloud for D̂ and coh★ (defaults to ``embeddings`` when only those are given).
    - ``chunks``: the work's event chunks, the Merkle leaves; ``data`` counts as one chunk; when neither is
      given the points (or embeddings) are the leaves, one per row.
    - r comes from ``embeddings`` by product quantisation when given (against ``codebook``, an
      ``agent_client.codebook.Codebook``, when given; else with codes fitted on the cloud), else from the bytes
      of the chunks.
    """
    fallbacks: list[str] = []
    chunk_list = list(chunks) if chunks is not None else ([data] if data is not None else None)
    cloud_source = points if points is not None else embeddings
    if cloud_source is None:
        raise ValueError("build_pcs needs a point cloud (points=) or embeddings (embeddings=)")
    cloud = signals.as_cloud(cloud_source)
    if cloud.shape[1] == 0:
        raise ValueError(f"a point cloud is a 2-D array of points x dimensions, got shape {cloud.shape}")

    if len(cloud) == 0:
        # No point at all: one occupied cell at every scale keeps N_j valid and says D̂ = 0.
        counts = {int(s): 1 for s in scales}
        fallbacks.append("D_hat:no_points")
    else:
        counts = signals.dimension_counts(cloud, scales)  # in the first 3 principal axes (D̂ in high dimensions)
        if len(cloud) < MIN_POINTS_FOR_DIMENSION:
            fallbacks.append(f"D_hat:too_few_points({len(cloud)}<{MIN_POINTS_FOR_DIMENSION})")

    if len(cloud) < 2:
        coh, v_star = 0.0, []
        fallbacks.append("coh_star:too_few_points=0")
    else:
        coh, v_star = signals.coherence(cloud, directions, bins, seed)
        if len(v_star) > MAX_V_STAR:
            v_star = []

    r = _compressibility(embeddings, chunk_list, cloud, seed, fallbacks, codebook)
    leaves = chunk_list if chunk_list is not None else point_leaves(cloud)
    pcs = assemble_pcs(
        merkle_root=merkle_root(leaves),
        epoch=epoch,
        shard_id=shard_id,
        scales=list(scales),
        counts=counts,
        coh_star=coh,
        r=r,
        v_star=v_star,
        seed=seed,
        outbox_seq=outbox_seq,
        degraded=bool(fallbacks),
        fallbacks=fallbacks,
        sent_at=sent_at,
        version=version,
    )
    if sent_at is None:
        del pcs["sent_at"]  # optional on the wire; leaving it out keeps the PCS reproducible
    return sign_pcs(pcs, alg, key)


def _compressibility(
    embeddings: Any, chunks: list[bytes] | None, cloud: np.ndarray, seed: int, fallbacks: list[str], codebook: Any
) -> float:
    if embeddings is not None:
        if codebook is not None:  # a codebook that does not fit the embeddings is an error, not a fallback
            return signals.compressibility_embeddings(embeddings, seed=seed, codebook=codebook)
        try:
            return signals.compressibility_embeddings(embeddings, seed=seed)
        except ValueError:
            fallbacks.append("r:pq_unavailable=bytes")
    raw = b"".join(chunks) if chunks is not None else np.ascontiguousarray(cloud, dtype="<f8").tobytes()
    if not raw:
        fallbacks.append("r:no_data=1")
        return 1.0  # nothing to compress: treated as incompressible, the budget's conservative side
    return signals.compressibility_bytes(raw)


def signing_key_from_env(environ: dict[str, str] | None = None) -> tuple[str, bytes]:
    """(algorithm, key) from PCS_HMAC_KEY or PCS_ED25519_SEED_B64 (base64 of the 32-byte seed); none if unset."""
    import base64
    import binascii

    env = os.environ if environ is None else environ
    if env.get("PCS_HMAC_KEY") and env.get("PCS_ED25519_SEED_B64"):
        raise ValueError("both PCS_HMAC_KEY and PCS_ED25519_SEED_B64 are set: set the one the tenant signs with")
    if env.get("PCS_HMAC_KEY"):
        return signing.HMAC, env["PCS_HMAC_KEY"].encode()
    if env.get("PCS_ED25519_SEED_B64"):
        try:
            seed = base64.b64decode(env["PCS_ED25519_SEED_B64"].strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("PCS_ED25519_SEED_B64 is not standard base64") from None
        if len(seed) != 32:
            raise ValueError(f"PCS_ED25519_SEED_B64 must decode to 32 bytes, got {len(seed)}")
        return signing.ED25519, seed
    return signing.NONE, b""
