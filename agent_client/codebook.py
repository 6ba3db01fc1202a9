"""Product-quantisation codebooks fitted once on a reference corpus, stored in versioned files (Jégou et al. 2011).

r of an embedding cloud is the zlib ratio of its PQ code stream (``signals.compressibility_embeddings``). A
codebook fitted on the cloud itself adapts to the cloud: with as many codes as points every point gets a code
of its own, and even with fewer, a short cloud's codes say little about how varied it is. A codebook fitted
once, on many tokens of ordinary text, is one fixed alphabet for every cloud: a cloud that repeats itself
reuses a few codes whatever its length, a varied one spends many, and two agents with the same file code the
same embedding the same way.

A codebook file is an ``.npz`` array file (no pickled objects) holding ``widths`` (each block's number of
coordinates, the blocks being ``np.array_split`` of them), ``flat`` (every block's codes x width centroids,
float32, block after block) and ``meta``, a JSON text: the
format (``FORMAT``), the codebook's name and version, the embedding model and its dimensions, how it was
fitted (corpus, token count, seed, k-means iterations) and the SHA-256 of the centroids' bytes. The name and
version are what a PCS's r depends on: the agent documents which codebook it uses (docs/agents/signals-on-text.md),
and a new fit is a new version, never the same file rewritten.

The agent ships one: ``DEFAULT_CODEBOOK`` (all-MiniLM-L6-v2, 8 blocks of 48 dimensions, 64 codes each), which
the text path uses for that model. ``flk-agent codebook fit`` makes others.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "flk-pq-codebook/1"
DEFAULT_CODEBOOK = "all-MiniLM-L6-v2.pq8x64.v1.npz"  # in agent_client/codebooks/
DEFAULT_SUBSPACES = 8
DEFAULT_CODES = 64  # 6 bits a block: a varied 32-token cloud spends about as many codes as tokens, a repeated one few
KMEANS_ITERATIONS = 25


class CodebookError(ValueError):
    """A codebook file that cannot be read, or a codebook that does not fit the embeddings given to it."""


@dataclass(frozen=True)
class Codebook:
    """One PQ codebook: ``centroids[j]`` are the codes of block j of the coordinates; ``meta`` says what it is."""

    centroids: tuple[np.ndarray, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subspaces(self) -> int:
        return len(self.centroids)

    @property
    def codes(self) -> int:
        return int(self.centroids[0].shape[0])

    @property
    def dims(self) -> int:
        return int(sum(block.shape[1] for block in self.centroids))

    @property
    def name(self) -> str:
        """``<name> v<version>``: what a PCS's r was coded with."""
        return f"{self.meta.get('name', 'unnamed')} v{self.meta.get('version', '?')}"

    @property
    def digest(self) -> str:
        """SHA-256 of the centroids (float32, little-endian, block after block)."""
        return _digest(self.centroids)

    def encode(self, embeddings: Any) -> np.ndarray:
        """The PQ codes of ``embeddings`` (points x dims): the nearest centroid of each block, points x subspaces.

        Squared Euclidean distance in float64; a tie goes to the lower code. CodebookError when the
        embeddings have another number of dimensions than the codebook.
        """
        cloud = np.asarray(embeddings, dtype=np.float64)
        if cloud.ndim != 2 or cloud.shape[1] != self.dims:
            raise CodebookError(
                f"the codebook {self.name} codes {self.dims}-dimensional embeddings, got shape {cloud.shape}"
            )
        out = np.empty((len(cloud), self.subspaces), dtype=np.uint8 if self.codes <= 256 else np.uint16)
        start = 0
        for j, centroids in enumerate(self.centroids):
            block = cloud[:, start : start + centroids.shape[1]]
            start += centroids.shape[1]
            c = centroids.astype(np.float64)
            # |x − c|² = |x|² − 2 x·c + |c|²; |x|² is the same for every code of a point, so it is left out.
            distances = (c * c).sum(axis=1)[None, :] - 2.0 * block @ c.T
            out[:, j] = np.argmin(distances, axis=1)
        return out


def _digest(centroids: tuple[np.ndarray, ...]) -> str:
    sha = hashlib.sha256()
    for block in centroids:
        sha.update(np.ascontiguousarray(block, dtype="<f4").tobytes())
    return sha.hexdigest()


def fit_codebook(
    embeddings: Any,
    *,
    subspaces: int = DEFAULT_SUBSPACES,
    codes: int = DEFAULT_CODES,
    seed: int = 0,
    iterations: int = KMEANS_ITERATIONS,
    sample: int | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Codebook:
    """A codebook fitted on ``embeddings`` (tokens x dims, from a reference corpus): k-means in each block.

    scipy's k-means2 with ``codes`` centroids per block, initial centroids drawn among the points (k-means++)
    from a generator seeded with ``seed``, ``iterations`` rounds: the same embeddings and seed give the same
    codebook. ``sample``: fit on that many tokens drawn without replacement (a generator seeded with ``seed``
    too), to bound k-means' time on a large corpus. ``meta`` is kept in the file beside the fit's own facts (name, version, model, corpus, ...).
    """
    from scipy.cluster.vq import kmeans2

    cloud = np.asarray(embeddings, dtype=np.float64)
    corpus_tokens = len(cloud)
    if sample is not None and cloud.ndim == 2 and sample < len(cloud):
        cloud = cloud[np.random.default_rng(seed).choice(len(cloud), sample, replace=False)]
    if cloud.ndim != 2 or len(cloud) < codes or cloud.shape[1] < subspaces:
        raise CodebookError(
            f"fitting {subspaces} blocks of {codes} codes needs at least {codes} points of at least {subspaces} "
            f"dimensions, got shape {cloud.shape}"
        )
    if not 2 <= codes <= 65536:
        raise CodebookError(f"a codebook has 2 to 65536 codes per block, got {codes}")
    rng = np.random.default_rng(seed)
    centroids = []
    for block in np.array_split(cloud, subspaces, axis=1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty cluster is kept at its last centroid
            found, _ = kmeans2(block, codes, iter=iterations, minit="++", rng=rng)
        centroids.append(found.astype(np.float32))
    fitted = {"tokens": len(cloud), "corpus_tokens": corpus_tokens, "seed": int(seed), "iterations": int(iterations)}
    info = {**(meta or {}), **fitted, "subspaces": subspaces, "codes": codes, "dims": int(cloud.shape[1])}
    return Codebook(tuple(centroids), {**info, "format": FORMAT, "sha256": _digest(tuple(centroids))})


def save_codebook(codebook: Codebook, path: str | Path) -> Path:
    """Write ``codebook`` to ``path`` (an .npz file); refuses to overwrite a file: a new fit is a new version."""
    target = Path(path)
    if target.exists():
        raise CodebookError(f"{target} exists: a codebook file is never rewritten, give the new fit a new version")
    buffer = io.BytesIO()
    np.savez(
        buffer,
        widths=np.array([block.shape[1] for block in codebook.centroids], dtype=np.int64),
        flat=np.concatenate([block.ravel() for block in codebook.centroids]).astype("<f4"),
        meta=np.array(json.dumps(dict(codebook.meta), sort_keys=True)),
    )
    target.write_bytes(buffer.getvalue())
    return target


def load_codebook(path: str | Path) -> Codebook:
    """The codebook in ``path``; CodebookError for a file that is not one, or whose centroids fail their digest."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            widths = [int(w) for w in stored["widths"]]
            flat = stored["flat"].astype(np.float32)
            meta = json.loads(str(stored["meta"]))
    except (OSError, KeyError, ValueError) as exc:
        raise CodebookError(f"{path} is not a codebook file: {exc}") from None
    if meta.get("format") != FORMAT:
        raise CodebookError(f"{path} is in format {meta.get('format')!r}, this agent reads {FORMAT}")
    codes = int(meta["codes"])
    if len(flat) != codes * sum(widths):
        raise CodebookError(f"{path}: {len(flat)} numbers for {codes} codes of blocks {widths}")
    blocks, start = [], 0
    for width in widths:
        blocks.append(flat[start : start + codes * width].reshape(codes, width))
        start += codes * width
    codebook = Codebook(tuple(blocks), meta)
    if codebook.digest != meta.get("sha256"):
        raise CodebookError(f"{path}: the centroids do not match their SHA-256 (a damaged or edited file)")
    return codebook


def shipped_codebook_path(name: str = DEFAULT_CODEBOOK) -> Path:
    """The path of a codebook shipped in the agent package (``agent_client/codebooks/``)."""
    return Path(str(resources.files("agent_client").joinpath("codebooks", name)))


_loaded: dict[str, Codebook] = {}


def default_codebook() -> Codebook:
    """The shipped codebook for all-MiniLM-L6-v2 (``DEFAULT_CODEBOOK``), read once per process."""
    if DEFAULT_CODEBOOK not in _loaded:
        _loaded[DEFAULT_CODEBOOK] = load_codebook(shipped_codebook_path())
    return _loaded[DEFAULT_CODEBOOK]
