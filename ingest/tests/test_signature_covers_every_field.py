"""PCS 0.2: every golden vector gets its expected verdict, and a change to any single field, at any depth, of a
signed PCS is refused with 401 (the signature covers every field but ``sig``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from agent_client.canonical import pcs_id_for
from agent_client.pcs import sign_pcs
from agent_client.regime import REGIMES
from flk_site.testing import ed25519_public_b64
from ingest.models import PcsRecord

pytestmark = pytest.mark.django_db

VECTORS = json.loads((Path(__file__).parents[2] / "agent_client/tests/vectors/pcs_vectors_v0_2.json").read_text())
CASES = {case["name"]: case for case in VECTORS["pcs"]}
PCS_ID_PARTS = ("merkle_root", "epoch", "shard_id")


def leaves(value: Any, path: tuple = ()) -> list[tuple]:
    """The path of every value that is not an object or an array, at any depth."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in leaves(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in leaves(item, (*path, index))]
    return [path]


def other_value(value: Any, path: tuple) -> Any:
    """A different value of the same kind that the schema still accepts at ``path``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.001 if value + 0.001 <= 1 else value - 0.001
    return {
        "version": "0.1",  # a downgrade: the 0.2 signature does not verify over the 0.1 subset either
        "regime": next(r for r in REGIMES if r != value),
        "sent_at": "2026-01-01T00:00:01Z",
        "merkle_root": value[:-1] + ("0" if value[-1] != "0" else "1"),
    }.get(path[0], value + "x")


def consistent(pcs: dict[str, Any], path: tuple, old: Any) -> dict[str, Any]:
    """``pcs`` with what the schema derives from the changed field derived again, so only the signature can
    tell: pcs_id from its three parts, the N_j key of a changed scale."""
    if path[0] in PCS_ID_PARTS:
        pcs["pcs_id"] = pcs_id_for(pcs["merkle_root"], pcs["epoch"], pcs["shard_id"])
    if path[0] == "scales":
        pcs["N_j"][str(pcs["scales"][path[1]])] = pcs["N_j"].pop(str(old))
    return pcs


def tamperings(pcs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every single-field change the schema lets through, named: a changed value at any depth, a field or an
    array item added, an optional field removed."""
    found = {}
    for path in leaves(pcs):
        if path[0] in ("sig", "schema", "pcs_id"):  # pcs_id changes with its parts, below
            continue
        changed = copy.deepcopy(pcs)
        *parent, last = path
        holder = changed
        for step in parent:
            holder = holder[step]
        old = holder[last]
        holder[last] = other_value(old, path)
        found["changed " + ".".join(map(str, path))] = consistent(changed, path, old)
    for where, extra in ((), {"unsigned": True}), (("ft",), {"verdict": "accept"}):
        added = copy.deepcopy(pcs)
        (added["ft"] if where else added).update(extra)
        found["added " + ".".join((*where, *extra))] = added
    for array in (("v_star",), ("ft", "fallbacks")):
        appended = copy.deepcopy(pcs)
        (appended[array[0]] if len(array) == 1 else appended[array[0]][array[1]]).append(
            0.5 if array == ("v_star",) else "D_hat"
        )
        found["appended to " + ".".join(array)] = appended
    for optional in ("attempt", "sent_at", "seed", "v_star", "ft", "note"):
        if optional in pcs:
            removed = copy.deepcopy(pcs)
            del removed[optional]
            found[f"removed {optional}"] = removed
    for name in ("outbox_seq", "degraded", "fallbacks", "clock_skew_ms"):
        removed = copy.deepcopy(pcs)
        del removed["ft"][name]
        found[f"removed ft.{name}"] = removed
    return found


TAMPERED = [(name, where) for name, case in CASES.items() for where in tamperings(case["pcs"])]


@pytest.mark.parametrize("name", CASES)
def test_each_vector_gets_its_verdict_with_hmac(hmac_default_tenant, submit, name):
    case = CASES[name]
    response = submit(case["pcs"])
    expected = case["verify"]
    assert response.status_code == expected["http_status"], response.content
    answer = response.json()
    assert answer["decision"] == expected["decision"]
    assert [reason["code"] for reason in answer["reasons"]] == expected["failed_checks"]
    assert answer["recomputed"] == {"D_hat": expected["recomputed_D_hat"], "regime": expected["expected_regime"],
                                    "budget": expected["expected_budget"]}  # fmt: skip
    record = PcsRecord.objects.get()
    assert record.body == case["pcs"]  # stored as signed: every stored field is a signed one
    assert record.signed_digest == case["content_sha256"]


@pytest.mark.parametrize("name", CASES)
def test_each_vector_gets_its_verdict_with_ed25519(make_tenant, submit, name):
    case = CASES[name]
    assert VECTORS["ed25519_public_key_b64"] == ed25519_public_b64()
    make_tenant("acme", sign_alg="ed25519", ed25519={"e1": VECTORS["ed25519_public_key_b64"]})
    response = submit(case["pcs"] | {"sig": case["ed25519_b64"]}, tenant="acme")
    assert response.status_code == case["verify"]["http_status"], response.content
    assert response.json()["decision"] == case["verify"]["decision"]


def test_the_tamperings_reach_every_field_of_every_vector():
    for case in CASES.values():
        named = " ".join(tamperings(case["pcs"]))
        for field in case["pcs"]:
            assert field in named or field in ("sig", "schema", "pcs_id"), field
    # The nested ones too: every N_j count, every scale, every v★ component, every ft field.
    assert {"changed N_j.16", "changed scales.4", "changed v_star.2", "changed ft.degraded"} <= set(
        tamperings(CASES["seed_example_sticky"]["pcs"])
    )


@pytest.mark.parametrize(("name", "where"), TAMPERED)
def test_any_single_change_to_a_signed_pcs_is_401(hmac_default_tenant, submit, name, where):
    tampered = tamperings(CASES[name]["pcs"])[where]
    response = submit(tampered)
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "signature_invalid"
    assert not PcsRecord.objects.exists()


def test_a_forged_degraded_flag_neither_passes_nor_poisons_the_genuine_copy(hmac_default_tenant, submit):
    # The attack of issue 22: ft.degraded set to false in transit turned an escalation into an accept, and the
    # genuine copy then got the forged verdict back as a replay.
    genuine = CASES["degraded"]["pcs"]
    forged = copy.deepcopy(genuine)
    forged["ft"]["degraded"] = False
    forged["ft"]["fallbacks"] = []
    assert submit(forged).status_code == 401
    response = submit(genuine)
    assert response.status_code == 202
    assert response.json()["decision"] == "escalate" and response.json()["dedup"] is False


def test_changing_the_version_to_0_1_is_401_even_where_0_1_would_be_refused(make_tenant, submit):
    make_tenant("strict", hmac={"k1": VECTORS["hmac_key_utf8"]}, min_pcs_version="0.2")
    downgraded = CASES["seed_example_sticky"]["pcs"] | {"version": "0.1"}
    response = submit(downgraded, tenant="strict")
    assert response.status_code == 401 and response.json()["code"] == "signature_invalid"


def test_numbers_written_as_integers_are_signed_verified_and_stored_as_written(hmac_default_tenant, submit):
    # Another implementation may write 2 where Python writes 2.0: the signature covers the text it sent.
    pcs = copy.deepcopy(CASES["edge_formatting"]["pcs"]) | {"D_hat": 2, "budget": 1}
    sign_pcs(pcs, "hmac", VECTORS["hmac_key_utf8"].encode())
    response = submit(pcs)
    assert response.status_code == CASES["edge_formatting"]["verify"]["http_status"]
    assert response.json()["decision"] == CASES["edge_formatting"]["verify"]["decision"]
    stored = PcsRecord.objects.get()
    assert stored.body["D_hat"] == 2 and isinstance(stored.body["D_hat"], int) and stored.d_hat == 2.0
