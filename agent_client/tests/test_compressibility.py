"""r: random data is incompressible, repetitive data compresses; PQ makes embeddings a finite alphabet."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

from agent_client.signals import (
    ZLIB_BLOCK,
    ZLIB_LEVEL,
    compressibility_bytes,
    compressibility_embeddings,
    product_quantise,
)


def test_random_bytes_are_incompressible():
    assert compressibility_bytes(os.urandom(100_000)) == pytest.approx(1.0, abs=0.01)


def test_repetitive_bytes_compress_to_almost_nothing():
    assert compressibility_bytes(b"step ok;" * 10_000) < 0.01


def test_r_stays_within_zero_and_one():
    assert compressibility_bytes(b"x") == 1.0  # zlib's header makes one byte bigger; r is clamped


def test_data_over_a_block_is_measured_block_by_block_whatever_the_number_of_cores(monkeypatch):
    rng = np.random.default_rng(11)
    # float32 values widened to float64, 10 MB: three blocks, the last one short
    data = rng.standard_normal(1_250_000).astype(np.float32).astype(np.float64).tobytes()
    blocks = [data[start : start + ZLIB_BLOCK] for start in range(0, len(data), ZLIB_BLOCK)]
    assert len(blocks) == 3
    expected = sum(len(zlib.compress(block, ZLIB_LEVEL)) for block in blocks) / len(data)
    assert compressibility_bytes(data) == expected
    assert 0.5 < expected < 0.6  # the zero low halves of the widened mantissas compress
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert compressibility_bytes(data) == expected
    assert compressibility_bytes(os.urandom(3 * ZLIB_BLOCK + 5)) == pytest.approx(1.0, abs=0.01)


def test_empty_data_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        compressibility_bytes(b"")


def test_random_embeddings_are_much_less_compressible_than_repeated_ones():
    rng = np.random.default_rng(9)
    random_r = compressibility_embeddings(rng.standard_normal((2000, 64)), seed=1)
    prototypes = rng.standard_normal((4, 64))
    repeated_r = compressibility_embeddings(prototypes[rng.integers(0, 4, 2000)], seed=1)
    # 8 codes per block: unrelated points cost about 3 bits per code, four prototypes drawn at random 2.
    assert random_r > 0.4
    assert repeated_r < 0.8 * random_r


def test_product_quantisation_is_reproducible_with_the_same_seed():
    emb = np.random.default_rng(10).standard_normal((600, 32))
    codes = product_quantise(emb, subspaces=8, codes=256, seed=3)
    assert codes.shape == (600, 8)
    assert np.array_equal(codes, product_quantise(emb, subspaces=8, codes=256, seed=3))
