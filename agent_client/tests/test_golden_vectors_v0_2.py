"""PCS 0.2 reproduces ../shared/vectors/pcs_vectors_v0_2.json byte for byte: payload, digest, HMAC, Ed25519,
content digest, and the retry that signs a new attempt over the same content."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from agent_client import PROTOCOL_VERSION, signing
from agent_client.canonical import canonical_payload, content_digest, signing_digest
from agent_client.pcs import PcsSigner, assemble_pcs, sign_pcs
from agent_client.schema import parse_pcs

HERE = Path(__file__).parent
SHIPPED = HERE / "vectors" / "pcs_vectors_v0_2.json"
SHARED = HERE.parents[2] / "shared" / "vectors" / "pcs_vectors_v0_2.json"
VECTORS = json.loads(SHIPPED.read_text())
CASES = {case["name"]: case for case in VECTORS["pcs"]}
SEED = bytes.fromhex(VECTORS["ed25519_seed_hex"])
HMAC_KEY = VECTORS["hmac_key_utf8"].encode()


def parsed(pcs: dict) -> dict:
    """The PCS as the server holds it: sent as JSON and read back through the schema."""
    return parse_pcs(json.dumps(pcs).encode())


@pytest.mark.skipif(not SHARED.exists(), reason="no ../shared beside this clone")
def test_shipped_copy_equals_the_shared_vectors():
    assert SHIPPED.read_bytes() == SHARED.read_bytes()


@pytest.mark.parametrize("name", CASES)
def test_canonical_payload_and_digest_match_byte_for_byte(name):
    case = CASES[name]
    for pcs in (case["pcs"], parsed(case["pcs"])):
        assert canonical_payload(pcs) == case["canonical_payload"].encode()
        assert signing_digest(pcs).hex() == case["sha256_hex"]


@pytest.mark.parametrize("name", CASES)
def test_hmac_and_ed25519_signatures_match(name):
    case = CASES[name]
    digest = signing_digest(parsed(case["pcs"]))
    assert signing.hmac_sign(HMAC_KEY, digest) == case["hmac_b64"] == case["pcs"]["sig"]
    assert signing.ed25519_sign(SEED, digest) == case["ed25519_b64"]
    key = signing.load_ed25519_public_key(VECTORS["ed25519_public_key_b64"])
    assert signing.ed25519_verify(key, digest, signing.decode_signature(case["ed25519_b64"]))


@pytest.mark.parametrize("name", CASES)
def test_content_digest_matches_and_leaves_out_sig_attempt_and_sent_at(name):
    case = CASES[name]
    retry = case["retry_attempt_2"]["pcs"]
    assert case["retry_attempt_2"]["same_content"]
    assert content_digest(parsed(case["pcs"])) == case["content_sha256"]
    assert content_digest(parsed(retry)) == case["content_sha256"]
    assert signing_digest(retry) != signing_digest(case["pcs"])  # the new attempt is signed


@pytest.mark.parametrize("name", CASES)
def test_signing_the_retry_again_gives_the_vectors_signature(name):
    case = CASES[name]
    first = copy.deepcopy(case["pcs"])
    first.update(attempt=2, sent_at=case["retry_attempt_2"]["pcs"]["sent_at"])
    assert PcsSigner("hmac", HMAC_KEY).sign(first)["sig"] == case["retry_attempt_2"]["pcs"]["sig"]


def test_the_eight_signed_fields_of_0_1_are_not_what_0_2_signs():
    pcs = copy.deepcopy(CASES["seed_example_sticky"]["pcs"])
    sticky_0_2 = signing_digest(pcs)
    pcs["version"] = "0.1"
    assert canonical_payload(pcs).startswith(b'{"D_hat":0.857365188,"budget":0.285,')
    assert signing_digest(pcs) != sticky_0_2


def test_a_float_written_as_an_integer_is_another_payload():
    # 0.2 writes numbers as they came: "2.0" and "2" are different text, so different signed bytes.
    pcs = copy.deepcopy(CASES["edge_formatting"]["pcs"])
    as_integer = parsed(pcs | {"D_hat": 2})
    assert as_integer["D_hat"] == 2 and isinstance(as_integer["D_hat"], int)
    assert b'"D_hat":2,' in canonical_payload(as_integer)
    assert signing_digest(as_integer).hex() != CASES["edge_formatting"]["sha256_hex"]


def test_floats_in_fields_no_one_checks_are_rounded_like_the_signals():
    pcs = parsed(CASES["nested_floats"]["pcs"] | {"extra": {"deep": [0.1234567895, 1e300, -0.0]}})
    assert b'"extra":{"deep":[0.12345679,1e+300,-0.0]}' in canonical_payload(pcs)


def test_the_agent_emits_0_2_by_default_and_0_1_on_request():
    args = dict(merkle_root="ab" * 32, epoch=1, shard_id="s", scales=[2, 4], counts={2: 4, 4: 16}, coh_star=0.5, r=0.5)
    assert PROTOCOL_VERSION == "0.2"
    assert assemble_pcs(**args)["version"] == "0.2"
    old = sign_pcs(assemble_pcs(**args, version="0.1"), "hmac", HMAC_KEY)
    assert old["version"] == "0.1"
    assert canonical_payload(old).startswith(b'{"D_hat":')
    with pytest.raises(ValueError, match=r"one of 0\.1, 0\.2"):
        assemble_pcs(**args, version="0.3")


def test_a_signer_never_shows_its_key():
    assert "secret" not in repr(PcsSigner("hmac", b"secret")) and "secret" not in str(PcsSigner("hmac", b"secret"))
