"""r against a PQ codebook fitted once on a reference corpus and stored in a versioned file (issue 20, item 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from agent_client import codebook, signals
from agent_client.builder import build_pcs


def tokens_from(book: codebook.Codebook, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Points whose block j lies near centroid ``codes[:, j]`` of the codebook (a little noise around it)."""
    blocks = [book.centroids[j][codes[:, j]] for j in range(book.subspaces)]
    points = np.concatenate(blocks, axis=1).astype(np.float64)
    return points + rng.normal(0.0, 0.01, points.shape)


def test_the_agent_ships_a_codebook_for_its_default_model():
    book = codebook.default_codebook()
    assert (book.dims, book.subspaces, book.codes) == (384, 8, 64)
    assert book.meta["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert book.name == "all-MiniLM-L6-v2.pq8x64 v1"
    assert book.meta["tokens"] >= 20_000  # fitted on a reference corpus, not on any one cloud


@pytest.mark.parametrize("period", [1, 2, 4, 8])
def test_at_32_tokens_a_repeated_pattern_has_a_clearly_lower_r_than_varied_tokens(period):
    book = codebook.default_codebook()
    rng = np.random.default_rng(period)
    varied = tokens_from(book, rng.integers(0, book.codes, (32, book.subspaces)), rng)
    pattern = rng.integers(0, book.codes, (period, book.subspaces))
    repeated = tokens_from(book, np.tile(pattern, (32 // period, 1)), rng)
    r_varied = signals.compressibility_embeddings(varied, codebook=book)
    r_repeated = signals.compressibility_embeddings(repeated, codebook=book)
    assert r_varied > 0.7  # 64 codes: 6 bits per code, and zlib's overhead on 256 bytes
    assert r_repeated < r_varied - 0.25


def test_with_one_codebook_r_of_varied_tokens_does_not_depend_on_the_length():
    book = codebook.default_codebook()
    rng = np.random.default_rng(3)
    values = [
        signals.compressibility_embeddings(
            tokens_from(book, rng.integers(0, book.codes, (n, book.subspaces)), rng), codebook=book
        )
        for n in (64, 256, 1024)
    ]
    assert max(values) - min(values) < 0.1  # the entropy of the codes, not the count of the points


def test_a_token_keeps_its_code_whatever_cloud_it_is_in():
    book = codebook.default_codebook()
    rng = np.random.default_rng(4)
    cloud = tokens_from(book, rng.integers(0, book.codes, (40, book.subspaces)), rng)
    assert np.array_equal(book.encode(cloud)[:10], book.encode(cloud[:10]))


def test_the_builder_codes_r_with_the_codebook_it_is_given():
    book = codebook.default_codebook()
    rng = np.random.default_rng(5)
    cloud = tokens_from(book, np.tile(rng.integers(0, book.codes, (2, book.subspaces)), (16, 1)), rng)
    pcs = build_pcs(shard_id="s", epoch=0, embeddings=cloud, codebook=book)
    assert pcs["r"] == pytest.approx(signals.compressibility_embeddings(cloud, codebook=book), abs=1e-9)


def test_a_codebook_for_other_embeddings_is_refused():
    with pytest.raises(codebook.CodebookError, match="384-dimensional"):
        codebook.default_codebook().encode(np.zeros((5, 768)))


def test_a_fitted_codebook_round_trips_through_its_file(tmp_path):
    rng = np.random.default_rng(6)
    tokens = rng.standard_normal((500, 32))
    book = codebook.fit_codebook(tokens, subspaces=4, codes=8, seed=1, meta={"name": "test", "version": 2})
    path = codebook.save_codebook(book, tmp_path / "test.v2.npz")
    loaded = codebook.load_codebook(path)
    assert loaded.name == "test v2" and loaded.digest == book.digest
    assert np.array_equal(loaded.encode(tokens), book.encode(tokens))
    # The same tokens and seed give the same codebook.
    assert codebook.fit_codebook(tokens, subspaces=4, codes=8, seed=1).digest == book.digest


def test_a_codebook_file_is_never_rewritten(tmp_path):
    book = codebook.fit_codebook(np.random.default_rng(7).standard_normal((100, 16)), subspaces=2, codes=4)
    path = codebook.save_codebook(book, tmp_path / "c.npz")
    with pytest.raises(codebook.CodebookError, match="never rewritten"):
        codebook.save_codebook(book, path)


def test_a_damaged_codebook_file_is_refused(tmp_path):
    book = codebook.fit_codebook(np.random.default_rng(8).standard_normal((100, 16)), subspaces=2, codes=4)
    path = codebook.save_codebook(book, tmp_path / "c.npz")
    with np.load(path) as stored:
        parts = dict(stored)
    parts["flat"] = parts["flat"] + np.float32(0.5)
    np.savez(tmp_path / "edited.npz", **parts)
    with pytest.raises(codebook.CodebookError, match="SHA-256"):
        codebook.load_codebook(tmp_path / "edited.npz")


def test_flk_agent_codebook_show_prints_the_shipped_codebook():
    result = subprocess.run(
        [sys.executable, "-m", "agent_client.cli", "codebook", "show"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["name"], shown["version"], shown["sha256"]) == (
        "all-MiniLM-L6-v2.pq8x64",
        1,
        codebook.default_codebook().digest,
    )
