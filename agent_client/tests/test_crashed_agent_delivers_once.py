"""An agent killed between the outbox append and the POST resends after restart; the PCS is stored once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import requests

from flk_site.testing import FLK_AGENT, issue_api_key, outbox_status
from ingest.models import PcsRecord

APPEND_THEN_HANG = """
import sys, time
import numpy as np
from agent_client.builder import build_pcs
from agent_client.outbox import Outbox
pcs = build_pcs(shard_id="crash", epoch=1, seed=5, points=np.random.default_rng(5).random((400, 3)),
                alg="hmac", key=b"testkey")
entry = Outbox(sys.argv[1]).append(pcs)
print(pcs["pcs_id"], entry.seq, flush=True)
time.sleep(120)  # the POST would come here; the test kills the agent first
"""


@pytest.mark.slow
def test_an_agent_killed_before_posting_delivers_after_restart_exactly_once(gunicorn_service, tmp_path):
    service = gunicorn_service()
    outbox = tmp_path / "outbox"
    agent = subprocess.Popen([sys.executable, "-c", APPEND_THEN_HANG, str(outbox)], stdout=subprocess.PIPE, text=True)
    pcs_id, seq = agent.stdout.readline().split()
    os.kill(agent.pid, signal.SIGKILL)
    agent.wait(timeout=10)
    assert PcsRecord.objects.filter(pcs_id=pcs_id).count() == 0

    assert outbox_status(outbox)["pending"] == 1

    drain = [FLK_AGENT, "outbox", "drain", "--endpoint", service.url, "--outbox", str(outbox)]
    restarted = subprocess.run(drain, capture_output=True, text=True, timeout=60)
    assert restarted.returncode == 0, restarted.stderr
    record = PcsRecord.objects.get(pcs_id=pcs_id)
    assert int(seq) == 1 and record.body["ft"]["outbox_seq"] == 0  # a signed 0.2 PCS is stored as it was signed
    key = issue_api_key()
    answer = requests.get(f"{service.url}/v1/pcs/{pcs_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["pcs_id"] == pcs_id

    # Draining again sends nothing; a copy whose ack was lost is answered from the stored outcome.
    assert "delivered 0" in subprocess.run(drain, capture_output=True, text=True, timeout=60).stderr
    records = [json.loads(line.rpartition("\t")[0]) for line in (outbox / "outbox.log").read_text().splitlines()]
    put = next(record for record in records if record["op"] == "put")
    with open(outbox / "outbox.log", "a") as log:  # a record without its checksum, as older agents wrote
        log.write(json.dumps({"op": "put", "seq": 99, "pcs": put["pcs"]}) + "\n")
    again = subprocess.run(drain, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "delivered 1" in again.stderr
    assert PcsRecord.objects.filter(pcs_id=pcs_id).count() == 1
