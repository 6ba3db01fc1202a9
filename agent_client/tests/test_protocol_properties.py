"""Properties of the protocol over generated inputs (hypothesis)."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from agent_client.canonical import canonical_payload, round9
from agent_client.dimension import theil_sen_dhat
from agent_client.pcs import assemble_pcs
from agent_client.schema import parse_pcs

scales_st = st.lists(st.integers(1, 10_000), min_size=2, max_size=12, unique=True)
unit = st.floats(0, 1, allow_nan=False)


@given(scales=scales_st, exponent=st.floats(0.0, 3.0))
def test_theil_sen_recovers_the_exponent_of_an_exact_power_law(scales, exponent):
    counts = {str(s): 2.0 ** (exponent * math.log2(s)) for s in scales}
    # Real counts are integers; an exact power law with real counts must give the exponent back.
    xs = [math.log2(s) for s in scales]
    assert abs(theil_sen_dhat(scales, counts) - exponent) < 1e-9 or len(set(xs)) < 2


@given(scales=scales_st, shift=st.floats(-5, 5))
def test_theil_sen_ignores_a_constant_factor(scales, shift):
    counts = {str(s): 2 ** (10 + (i % 3)) for i, s in enumerate(scales)}
    scaled = {k: v * 8 for k, v in counts.items()}
    assert math.isclose(theil_sen_dhat(scales, counts), theil_sen_dhat(scales, scaled), abs_tol=1e-12)


@given(x=st.floats(-1e6, 1e6, allow_nan=False))
def test_round9_is_idempotent_and_within_half_a_unit(x):
    assert round9(round9(x)) == round9(x)
    assert abs(round9(x) - x) <= 5e-10 + abs(x) * 1e-15


@given(
    scales=scales_st,
    coh=unit,
    r=unit,
    epoch=st.integers(0, 2**40),
    shard=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=128),
)
def test_an_assembled_pcs_always_passes_the_schema(scales, coh, r, epoch, shard):
    pcs = assemble_pcs(
        merkle_root="ab" * 32,
        epoch=epoch,
        shard_id=shard,
        scales=scales,
        counts={s: 1 + s for s in scales},
        coh_star=coh,
        r=r,
    )
    parsed = parse_pcs(json.dumps(pcs))
    assert canonical_payload(parsed) == canonical_payload(pcs)


@given(scales=scales_st, coh=unit, r=unit)
def test_canonical_payload_does_not_depend_on_key_order(scales, coh, r):
    pcs = assemble_pcs(
        merkle_root="cd" * 32, epoch=1, shard_id="s", scales=scales, counts={s: 2 for s in scales}, coh_star=coh, r=r
    )
    reordered = dict(reversed(list(pcs.items())))
    assert canonical_payload(reordered) == canonical_payload(pcs)


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@given(extra=st.dictionaries(st.text(max_size=6), json_values, max_size=5), scales=scales_st, coh=unit, r=unit)
def test_a_0_2_payload_survives_the_wire_whatever_the_pcs_holds(extra, scales, coh, r):
    pcs = assemble_pcs(
        merkle_root="ef" * 32, epoch=3, shard_id="s", scales=scales, counts={s: 2 for s in scales}, coh_star=coh, r=r
    )
    pcs = {**extra, **pcs}
    sent = json.dumps(pcs, ensure_ascii=False, separators=(",", ":"))  # as the sender writes it
    assert canonical_payload(json.loads(sent)) == canonical_payload(pcs)
    assert canonical_payload(pcs).isascii()
