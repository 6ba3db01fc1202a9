"""An agent delivering a batch while the whole service is killed and restarted, then its PostgreSQL crashes.

The agent (``flk-agent submit``, outbox fsync on) must end with every PCS delivered and none in the DLQ;
the database must hold each PCS exactly once; a replay of the service's WAL afterwards must store nothing
more; and every PCS, sent again, must get its stored answer. The service, its PostgreSQL and its Redis
are the test's own, so that they can be killed.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import requests

from flk_site.testing import (
    FLK_AGENT,
    RedisServer,
    ServiceProcess,
    manage,
    outbox_status,
    pcs_files,
    service_env,
    stored_pcs_ids,
)

BATCH = 1500


@pytest.fixture
def stack(postgres_cluster, tmp_path):
    redis_server, services = RedisServer(), []
    try:
        env = service_env(postgres_cluster.create_database("flk"), redis_server.url, tmp_path / "service",
                          TOKEN_RATE="100000", TOKEN_BURST="100000", FLK_RETRY_AFTER_SECONDS="1")  # fmt: skip
        manage(env, "migrate", "--noinput", "-v", "0")
        services.append(ServiceProcess(env, workers=2))
        yield postgres_cluster, services, env
    finally:
        for service in services:
            service.stop()
        redis_server.stop()


@pytest.mark.slow
def test_a_batch_delivered_through_a_killed_service_and_a_database_crash_is_stored_once(stack, tmp_path):
    cluster, services, env = stack
    files = pcs_files(tmp_path / "pcs", BATCH, "outage")
    outbox = tmp_path / "outbox"
    agent = subprocess.Popen(
        # One PCS a request, so that the outages below come while many PCS are still to be sent (batches
        # deliver the lot within the service's restart; test_short_outage_leaves_everything_pending sends them).
        [FLK_AGENT, "submit", "--endpoint", services[0].url, "--outbox", str(outbox), "--max-attempts", "30",
         "--batch-size", "1", *files],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # The service dies with its workers in the middle of the batch and comes back on the same port.
        deadline = time.monotonic() + 60
        while not 0 < outbox_status(outbox)["pending"] < BATCH - 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        services[0].kill()
        time.sleep(1.0)
        services.append(ServiceProcess(env, workers=2, port=services[0].port))
        time.sleep(0.5)
        # Then its database crashes as in a power cut, and restarts.
        left = outbox_status(outbox)["pending"]
        cluster.crash()
        time.sleep(1.5)
        cluster.start()
        _, err = agent.communicate(timeout=300)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert left > 0, "the database must crash while the agent still has PCS to send"
    answered = [json.loads(line) for line in services[-1].log_path.read_text().splitlines() if line.startswith("{")]
    assert any(line.get("status") == 503 for line in answered), "the agent must have met the database outage"
    assert agent.returncode == 0, err[-3000:]
    assert f"delivered {BATCH}, dead letters 0" in err
    assert outbox_status(outbox)["pending"] == 0

    stored = stored_pcs_ids(env["DATABASE_URL"])
    sent = {json.loads(Path(f).read_text())["pcs_id"] for f in files}
    assert len(stored) == len(set(stored)) == BATCH and set(stored) == sent
    manage(env, "replay_wal")
    assert sorted(stored_pcs_ids(env["DATABASE_URL"])) == sorted(stored)

    session = requests.Session()
    for f in files[:: BATCH // 50]:
        pcs = json.loads(Path(f).read_text())
        again = session.post(f"{services[-1].url}/v1/pcs/submit", data=json.dumps(pcs), timeout=30,
                             headers={"Content-Type": "application/json"})  # fmt: skip
        assert again.status_code in (200, 202) and again.json()["dedup"] is True, again.text
