"""The verifier's one-pass digests equal the signing digest and the content digest computed apart."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from agent_client.canonical import content_digest, signing_and_content_digests, signing_digest

VECTORS = json.loads((Path(__file__).parent / "vectors" / "pcs_vectors_v0_2.json").read_text())
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def test_the_golden_vectors_give_the_same_digests_at_once():
    for pcs in VECTORS["pcs"]:
        pcs = pcs.get("pcs", pcs)
        if pcs.get("version", "").startswith("0.2"):
            assert signing_and_content_digests(pcs) == (signing_digest(pcs), content_digest(pcs))


@given(st.dictionaries(st.text(max_size=8), values, max_size=8), st.sampled_from(["0.2", "0.2.1"]))
def test_any_pcs_gives_the_same_digests_at_once(fields, version):
    pcs = {**fields, "version": version, "sig": "x", "attempt": 3, "sent_at": "2030-01-01T00:00:00Z"}
    assert signing_and_content_digests(pcs) == (signing_digest(pcs), content_digest(pcs))
