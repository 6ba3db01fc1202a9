"""PCS 0.2 replays: the same content (every field but sig, attempt and sent_at) is a replay, whatever the
attempt and its fresh signature; any other content under the same pcs_id is 409."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from agent_client.pcs import sign_pcs
from flk_site.testing import HMAC_KEY, make_pcs, signed
from ingest.models import PcsRecord

pytestmark = pytest.mark.django_db

VECTORS = json.loads((Path(__file__).parents[2] / "agent_client/tests/vectors/pcs_vectors_v0_2.json").read_text())
CASES = {case["name"]: case for case in VECTORS["pcs"]}


@pytest.mark.parametrize("name", CASES)
def test_a_retry_with_a_new_attempt_and_a_fresh_signature_is_a_replay(hmac_default_tenant, submit, name):
    case = CASES[name]
    first = submit(case["pcs"])
    retry = submit(case["retry_attempt_2"]["pcs"])
    assert retry.status_code == first.status_code == case["verify"]["http_status"]
    assert retry.json() == {**first.json(), "dedup": True}
    assert PcsRecord.objects.get().attempt == 1


def test_a_retry_that_kept_its_first_signature_is_not_one(hmac_default_tenant, submit):
    case = CASES["seed_example_sticky"]
    submit(case["pcs"])
    stale = copy.deepcopy(case["retry_attempt_2"]["pcs"]) | {"sig": case["pcs"]["sig"]}
    assert submit(stale).status_code == 401


def test_other_content_under_the_same_pcs_id_is_409(hmac_default_tenant, submit):
    # Both vectors carry pcs_id e3e898d8…: the second adds a note and other fallbacks.
    sticky, extra = CASES["seed_example_sticky"]["pcs"], CASES["extra_field_and_non_ascii"]["pcs"]
    assert sticky["pcs_id"] == extra["pcs_id"]
    assert submit(sticky).status_code == 200
    response = submit(extra)
    assert response.status_code == 409
    assert response.json()["code"] == "pcs_id_conflict"
    assert PcsRecord.objects.get().body == sticky


@pytest.mark.parametrize(
    "change",
    [{"ft": {"outbox_seq": 9, "degraded": False, "fallbacks": [], "clock_skew_ms": 0}}, {"seed": 7}, {"note": "x"}],
    ids=["ft", "seed", "an extra field"],
)
def test_fields_0_1_left_unsigned_make_another_pcs_under_0_2(hmac_default_tenant, submit, change):
    pcs = make_pcs()
    assert submit(signed(copy.deepcopy(pcs))).status_code == 200
    assert submit(signed(pcs | change)).status_code == 409


def test_a_0_1_and_a_0_2_pcs_with_one_pcs_id_are_different_pcs(hmac_default_tenant, submit):
    newer = make_pcs()
    older = copy.deepcopy(newer) | {"version": "0.1"}
    assert submit(signed(older)).status_code == 200
    assert submit(signed(newer)).status_code == 409
    assert submit(signed(older | {"attempt": 3})).json()["dedup"] is True


def test_under_0_1_the_signed_subset_still_decides(hmac_default_tenant, submit):
    older = make_pcs(version="0.1")
    assert submit(signed(older)).status_code == 200
    # attempt, ft and seed are not signed in 0.1: the same signed subset is a replay.
    again = signed(older) | {"attempt": 2, "seed": 1, "ft": {"outbox_seq": 5}}
    assert submit(again).json()["dedup"] is True
    assert submit(sign_pcs(copy.deepcopy(older) | {"r": 0.5}, "hmac", HMAC_KEY)).status_code == 409
