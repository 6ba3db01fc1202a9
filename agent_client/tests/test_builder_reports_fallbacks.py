"""The builder makes valid, signed PCS and says in ``ft`` when a signal could not be computed."""

from __future__ import annotations

import base64
import json
import os
import subprocess

import numpy as np
import pytest

from agent_client import signing
from agent_client.builder import build_pcs, signing_key_from_env
from agent_client.canonical import signing_digest
from agent_client.schema import parse_pcs
from flk_site.testing import FLK_AGENT


def test_a_healthy_cloud_gives_a_valid_signed_pcs_with_no_fallbacks():
    pcs = build_pcs(shard_id="a", epoch=1, seed=3, points=np.random.default_rng(3).random((2000, 3)),
                    alg="hmac", key=b"k")  # fmt: skip
    parse_pcs(json.dumps(pcs))
    assert pcs["ft"] == {"outbox_seq": 0, "degraded": False, "fallbacks": [], "clock_skew_ms": 0}
    assert signing.hmac_verify(b"k", signing_digest(pcs), base64.b64decode(pcs["sig"]))


def test_too_few_points_is_reported_as_degraded():
    pcs = build_pcs(shard_id="a", epoch=1, points=np.array([[0.0, 1.0]]))
    parse_pcs(json.dumps(pcs))
    assert pcs["ft"]["degraded"] is True
    assert any(f.startswith("D_hat:too_few_points") for f in pcs["ft"]["fallbacks"])
    assert any(f.startswith("coh_star:too_few_points") for f in pcs["ft"]["fallbacks"])
    assert pcs["coh_star"] == 0.0


def test_embeddings_too_small_for_product_quantisation_fall_back_to_bytes():
    pcs = build_pcs(shard_id="a", epoch=1, embeddings=np.random.default_rng(4).random((50, 4)))
    assert "r:pq_unavailable=bytes" in pcs["ft"]["fallbacks"] and 0.0 <= pcs["r"] <= 1.0


def test_chunks_are_the_merkle_leaves_and_the_source_of_r():
    chunks = [b"event-%d" % i for i in range(100)]
    a = build_pcs(shard_id="a", epoch=1, points=np.random.default_rng(5).random((100, 2)), chunks=chunks)
    b = build_pcs(shard_id="a", epoch=1, points=np.random.default_rng(5).random((100, 2)), chunks=chunks[:-1])
    assert a["merkle_root"] != b["merkle_root"] and a["pcs_id"] != b["pcs_id"]


def test_an_ed25519_seed_from_the_environment_signs_verifiably():
    seed = bytes(range(32))
    alg, key = signing_key_from_env({"PCS_ED25519_SEED_B64": base64.b64encode(seed).decode()})
    pcs = build_pcs(shard_id="e", epoch=0, points=np.random.default_rng(6).random((100, 2)), alg=alg, key=key)
    verify_key = signing.load_ed25519_public_key(signing.ed25519_public_key_b64(seed))
    assert signing.ed25519_verify(verify_key, signing_digest(pcs), base64.b64decode(pcs["sig"]))


def test_both_signing_keys_in_the_environment_is_an_error_not_a_silent_choice(tmp_path):
    env = {"PCS_HMAC_KEY": "secret", "PCS_ED25519_SEED_B64": base64.b64encode(bytes(32)).decode()}
    with pytest.raises(ValueError, match="both PCS_HMAC_KEY and PCS_ED25519_SEED_B64 are set"):
        signing_key_from_env(env)
    data = tmp_path / "cloud.npy"
    np.save(data, np.random.default_rng(7).random((50, 2)))
    result = subprocess.run([FLK_AGENT, "build", "--in", str(data), "--shard-id", "s", "--epoch", "0", "--seed", "1"],
                            capture_output=True, text=True, env={**os.environ, **env}, timeout=120)  # fmt: skip
    assert result.returncode == 2 and "both PCS_HMAC_KEY and PCS_ED25519_SEED_B64 are set" in result.stderr
