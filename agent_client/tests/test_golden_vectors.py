"""The wire contract reproduces ../shared/vectors/pcs_vectors.json byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_client import signing
from agent_client.canonical import canonical_payload, pcs_id_for, round9, signing_digest
from agent_client.dimension import theil_sen_dhat
from agent_client.merkle import merkle_root
from agent_client.regime import classify_regime, compute_budget
from agent_client.schema import parse_pcs

HERE = Path(__file__).parent
SHIPPED = HERE / "vectors" / "pcs_vectors.json"
SHARED = HERE.parents[2] / "shared" / "vectors" / "pcs_vectors.json"
VECTORS = json.loads(SHIPPED.read_text())
PCS_CASES = {case["name"]: case for case in VECTORS["pcs"]}
SEED = bytes.fromhex(VECTORS["ed25519_seed_hex"])
HMAC_KEY = VECTORS["hmac_key_utf8"].encode()


@pytest.mark.skipif(not SHARED.exists(), reason="no ../shared beside this clone")
def test_shipped_copy_equals_the_shared_vectors():
    assert SHIPPED.read_bytes() == SHARED.read_bytes()


@pytest.mark.parametrize("name", PCS_CASES)
def test_pcs_id_is_the_hash_of_its_preimage(name):
    case = PCS_CASES[name]
    pcs = case["pcs"]
    assert f"{pcs['merkle_root']}|{pcs['epoch']}|{pcs['shard_id']}" == case["pcs_id_preimage"]
    assert pcs_id_for(pcs["merkle_root"], pcs["epoch"], pcs["shard_id"]) == pcs["pcs_id"]


@pytest.mark.parametrize("name", PCS_CASES)
def test_canonical_payload_and_digest_match_byte_for_byte(name):
    case = PCS_CASES[name]
    pcs = parse_pcs(json.dumps(case["pcs"]).encode())
    assert canonical_payload(pcs) == case["canonical_payload"].encode()
    assert signing_digest(pcs).hex() == case["sha256_hex"]


@pytest.mark.parametrize("name", PCS_CASES)
def test_hmac_and_ed25519_signatures_match(name):
    case = PCS_CASES[name]
    digest = bytes.fromhex(case["sha256_hex"])
    assert signing.hmac_sign(HMAC_KEY, digest) == case["hmac_b64"] == case["pcs"]["sig"]
    assert signing.ed25519_sign(SEED, digest) == case["ed25519_b64"]


@pytest.mark.parametrize("name", PCS_CASES)
def test_signatures_verify_and_a_flipped_bit_does_not(name):
    case = PCS_CASES[name]
    digest = bytes.fromhex(case["sha256_hex"])
    key = signing.load_ed25519_public_key(VECTORS["ed25519_public_key_b64"])
    ed_sig = signing.decode_signature(case["ed25519_b64"])
    mac = signing.decode_signature(case["hmac_b64"])
    assert signing.ed25519_verify(key, digest, ed_sig)
    assert signing.hmac_verify(HMAC_KEY, digest, mac)
    tampered = bytes([digest[0] ^ 1]) + digest[1:]
    assert not signing.ed25519_verify(key, tampered, ed_sig)
    assert not signing.hmac_verify(HMAC_KEY, tampered, mac)


def test_public_key_derives_from_the_seed():
    assert signing.ed25519_public_key_b64(SEED) == VECTORS["ed25519_public_key_b64"]


@pytest.mark.parametrize("case", VECTORS["rounding"], ids=lambda c: repr(c["in"]))
def test_rounding_is_half_up_on_the_decimal_text(case):
    assert round9(case["in"]) == case["round9"]
    assert repr(round9(case["in"])) == case["canonical_text"]


@pytest.mark.parametrize("case", VECTORS["theil_sen"], ids=lambda c: str(c["scales"]))
def test_theil_sen_uses_the_true_median(case):
    assert round9(theil_sen_dhat(case["scales"], case["N_j"])) == case["D_hat"]


@pytest.mark.parametrize("name", PCS_CASES)
def test_regime_and_budget_match_the_expected_verification(name):
    case = PCS_CASES[name]
    pcs = case["pcs"]
    assert round9(theil_sen_dhat(pcs["scales"], pcs["N_j"])) == case["verify"]["recomputed_D_hat"]
    assert classify_regime(pcs["D_hat"], pcs["coh_star"]) == case["verify"]["expected_regime"]
    assert round9(compute_budget(pcs["D_hat"], pcs["coh_star"], pcs["r"])) == case["verify"]["expected_budget"]


@pytest.mark.parametrize("case", VECTORS["merkle_rfc6962"], ids=lambda c: f"{len(c['leaves_hex'])}-leaves")
def test_merkle_root_follows_rfc6962(case):
    assert merkle_root([bytes.fromhex(h) for h in case["leaves_hex"]]) == case["root"]


@pytest.mark.parametrize("case", VECTORS["merkle_rfc6962"], ids=lambda c: f"{len(c['leaves_hex'])}-leaves")
def test_merkle_root_takes_any_iterable_of_bytes_like_leaves(case):
    leaves = [bytes.fromhex(h) for h in case["leaves_hex"]]
    assert merkle_root(iter([bytearray(leaf) for leaf in leaves])) == case["root"]
    assert merkle_root(memoryview(leaf) for leaf in leaves) == case["root"]


@pytest.mark.parametrize(
    "leaves, problem",
    [
        (None, "takes a list of leaves, each bytes, not NoneType"),
        (b"abc", "takes a list of leaves, each bytes, not bytes"),
        (["text"], "leaf 0 is str, not bytes (encode text first"),
        ([b"a", 1], "leaf 1 is int, not bytes"),
    ],
)
def test_merkle_root_names_a_leaf_that_is_not_bytes(leaves, problem):
    with pytest.raises(TypeError, match=problem.replace("(", r"\(")):
        merkle_root(leaves)
