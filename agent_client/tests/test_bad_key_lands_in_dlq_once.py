"""A PCS signed with the wrong key is refused (401), lands in the DLQ once, and stays once when retried."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from agent_client.builder import build_pcs
from agent_client.outbox import Outbox
from agent_client.sender import DEAD, Sender
from flk_site.testing import FLK_AGENT
from ingest.models import PcsRecord


@pytest.mark.slow
def test_a_wrongly_signed_pcs_is_dead_lettered_once_with_the_servers_error(gunicorn_service, tmp_path):
    service = gunicorn_service()
    pcs = build_pcs(shard_id="k", epoch=2, seed=1, points=np.random.default_rng(1).random((300, 2)),
                    alg="hmac", key=b"not-the-key")  # fmt: skip
    with Outbox(tmp_path) as box:
        result = Sender(service.url, box).submit(pcs)
        assert (result.outcome, result.status, result.attempts) == (DEAD, 401, 1)
        [letter] = box.dead_letters()
        assert letter.pcs_id == pcs["pcs_id"] and letter.status == 401 and letter.error

    retried = subprocess.run(
        [FLK_AGENT, "dlq", "retry", "--endpoint", service.url, "--outbox", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert retried.returncode == 1 and "dead letters 1" in retried.stderr
    listed = subprocess.run([FLK_AGENT, "dlq", "list", "--outbox", str(tmp_path)], capture_output=True, text=True)
    [line] = listed.stdout.splitlines()
    assert json.loads(line)["pcs_id"] == pcs["pcs_id"] and json.loads(line)["status"] == 401
    assert not PcsRecord.objects.filter(pcs_id=pcs["pcs_id"]).exists()
