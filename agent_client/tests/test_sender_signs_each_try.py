"""Under PCS 0.2 the attempt number is signed: a sender with the key signs each try again over the same
content; without it, a signed PCS goes out exactly as it was signed. The outbox never renumbers a 0.2 PCS
in a way that would break its signature or make a resend another PCS."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np

from agent_client import signing
from agent_client.canonical import content_digest, signing_digest
from agent_client.outbox import Outbox
from agent_client.pcs import PcsSigner, sign_pcs
from agent_client.sender import DELIVERED, Sender
from flk_site.testing import FLK_AGENT, HMAC_KEY, make_pcs, signed

SIGNER = PcsSigner("hmac", HMAC_KEY)


def verifies(pcs: dict) -> bool:
    return signing.hmac_verify(HMAC_KEY, signing_digest(pcs), signing.decode_signature(pcs["sig"]))


def sent(server) -> list[dict]:
    return [json.loads(body) for _headers, body in server.received]


def test_each_retry_carries_its_attempt_under_a_fresh_signature_over_the_same_content(scripted, tmp_path):
    server = scripted([(503, {"Retry-After": "0"}), (500, {})])
    with Outbox(tmp_path) as box:
        result = Sender(server.url, box, base_delay=0.001, signer=SIGNER).submit(signed(make_pcs()))
    assert (result.outcome, result.attempts) == (DELIVERED, 3)
    tries = sent(server)
    assert [t["attempt"] for t in tries] == [1, 2, 3]
    assert all(verifies(t) for t in tries)
    assert len({t["sig"] for t in tries}) == 3
    assert len({content_digest(t) for t in tries}) == 1


def test_without_the_key_a_signed_pcs_is_resent_byte_for_byte(scripted, tmp_path):
    server = scripted([(500, {})])
    pcs = signed(make_pcs(attempt=1))
    with Outbox(tmp_path) as box:
        assert Sender(server.url, box, base_delay=0.001).submit(pcs).outcome == DELIVERED
    first, second = (body for _headers, body in server.received)
    assert first == second and verifies(json.loads(first))


def test_a_0_1_pcs_still_counts_its_tries_without_signing_again(scripted, tmp_path):
    server = scripted([(500, {})])
    pcs = signed(make_pcs(version="0.1"))
    with Outbox(tmp_path) as box:
        Sender(server.url, box, base_delay=0.001, signer=SIGNER).submit(pcs)
    assert [(t["attempt"], t["sig"]) for t in sent(server)] == [(1, pcs["sig"]), (2, pcs["sig"])]


def test_the_outbox_numbers_an_unsigned_0_2_pcs_once_and_a_signed_one_never(tmp_path):
    with Outbox(tmp_path) as box:
        unsigned = box.append(make_pcs())
        assert unsigned.pcs["ft"]["outbox_seq"] == unsigned.seq == 1
        signed_pcs = signed(make_pcs())
        assert box.append(signed_pcs).pcs["ft"]["outbox_seq"] == 0 and verifies(signed_pcs)
        again = box.append(dict(unsigned.pcs))  # a dead letter queued again keeps its number
        assert (again.seq, again.pcs["ft"]["outbox_seq"]) == (3, 1)
        old = box.append(signed(make_pcs(version="0.1")))  # 0.1 does not sign ft: numbered as before
        assert old.pcs["ft"]["outbox_seq"] == old.seq == 4


def test_the_sender_signs_what_the_outbox_numbered(scripted, tmp_path):
    server = scripted([])
    with Outbox(tmp_path) as box:
        Sender(server.url, box, signer=SIGNER).submit(make_pcs())  # built unsigned, signed at each try
    [pcs] = sent(server)
    assert pcs["ft"]["outbox_seq"] == 1 and verifies(pcs)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([FLK_AGENT, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})  # fmt: skip


def test_flk_agent_builds_0_2_by_default_and_0_1_when_asked(tmp_path):
    data = tmp_path / "cloud.npy"
    np.save(data, np.random.default_rng(3).random((300, 3)))
    common = ("build", "--in", str(data), "--shard-id", "s", "--epoch", "1", "--seed", "1")
    key = {"PCS_HMAC_KEY": HMAC_KEY.decode()}
    newer, older = run(*common, env=key), run(*common, "--pcs-version", "0.1", env=key)
    from_env = run(*common, env={**key, "FLK_PCS_VERSION": "0.1"})
    assert newer.returncode == older.returncode == from_env.returncode == 0, newer.stderr + older.stderr
    assert json.loads(newer.stdout)["version"] == "0.2" and verifies(json.loads(newer.stdout))
    assert json.loads(older.stdout)["version"] == "0.1" and verifies(json.loads(older.stdout))
    assert from_env.stdout == older.stdout
    bad = run(*common, env={**key, "FLK_PCS_VERSION": "0.3"})
    assert bad.returncode == 2 and "the PCS version must be one of 0.1, 0.2, got '0.3'" in bad.stderr


def test_flk_agent_submit_signs_each_try_with_the_key_from_the_environment(scripted, tmp_path):
    server = scripted([(503, {"Retry-After": "0"})])
    path = tmp_path / "pcs.json"
    path.write_text(json.dumps(sign_pcs(make_pcs(), "hmac", HMAC_KEY)))
    result = run("submit", "--endpoint", server.url, "--outbox", str(tmp_path / "box"), str(path),
                 env={"PCS_HMAC_KEY": HMAC_KEY.decode()})  # fmt: skip
    assert result.returncode == 0, result.stderr
    tries = sent(server)
    assert [t["attempt"] for t in tries] == [1, 2] and all(verifies(t) for t in tries)
