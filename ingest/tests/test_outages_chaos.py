"""One load through a PostgreSQL crash, a worker killed with SIGKILL and a Redis restart.

During the load: never a 500; every 200 or 202 is in the database without a replay; after `replay_wal`
every 503 is too; nothing is stored twice; and every PCS sent, resubmitted, gets its stored answer (the
same one for those answered before). The service, its PostgreSQL and its Redis are the test's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from flk_site.testing import RedisServer, ServiceProcess, make_pcs, manage, service_env, signed, stored_pcs_ids

HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def stack(postgres_cluster, tmp_path):
    redis_server, service = RedisServer(), None
    try:
        env = service_env(postgres_cluster.create_database("flk"), redis_server.url, tmp_path,
                          TOKEN_RATE="100000", TOKEN_BURST="100000")  # fmt: skip
        manage(env, "migrate", "--noinput", "-v", "0")
        service = ServiceProcess(env, workers=2)
        yield postgres_cluster, redis_server, service, env
    finally:
        if service is not None:
            service.stop()
        redis_server.stop()


def workers_of(master: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def test_a_load_through_a_database_crash_a_killed_worker_and_a_redis_restart_loses_nothing(stack):
    cluster, redis_server, service, env = stack
    sent: dict[str, dict] = {}
    answers: dict[str, tuple[int | str, dict | None]] = {}  # status (or the client's error) and answer
    lock, stop = threading.Lock(), threading.Event()

    def client() -> None:
        session = requests.Session()
        while not stop.is_set():
            pcs = signed(make_pcs())
            with lock:
                sent[pcs["pcs_id"]] = pcs
            try:
                r = session.post(f"{service.url}/v1/pcs/submit", data=json.dumps(pcs), headers=HEADERS, timeout=30)
            except requests.RequestException as exc:  # a killed worker drops its connection
                with lock:
                    answers[pcs["pcs_id"]] = (type(exc).__name__, None)
                session = requests.Session()
                continue
            with lock:
                answers[pcs["pcs_id"]] = (r.status_code, r.json())

    clients = [threading.Thread(target=client) for _ in range(6)]
    for t in clients:
        t.start()
    try:
        time.sleep(1.0)
        cluster.crash()
        time.sleep(1.0)
        cluster.start()
        time.sleep(1.0)
        os.kill(workers_of(service.process.pid)[0], signal.SIGKILL)
        time.sleep(1.0)
        redis_server.stop()
        time.sleep(1.0)
        redis_server.start()
        time.sleep(1.0)
    finally:
        stop.set()
        for t in clients:
            t.join()

    statuses = [status for status, _ in answers.values()]
    assert all(s in (200, 202, 503) or isinstance(s, str) for s in statuses), sorted(set(map(str, statuses)))
    answered = {pcs_id for pcs_id, (status, _) in answers.items() if status in (200, 202)}
    refused = {pcs_id for pcs_id, (status, _) in answers.items() if status == 503}
    assert len(answered) > 100 and refused, "the load must run on both sides of the outage"
    assert {body["code"] for status, body in answers.values() if status == 503} == {"database_unavailable"}

    before = stored_pcs_ids(env["DATABASE_URL"])
    assert answered <= set(before)  # no replay needed for what was answered
    manage(env, "replay_wal")
    after = stored_pcs_ids(env["DATABASE_URL"])
    assert len(after) == len(set(after))
    assert answered | refused <= set(after)

    session = requests.Session()
    for pcs_id, pcs in sent.items():
        again = session.post(f"{service.url}/v1/pcs/submit", data=json.dumps(pcs), headers=HEADERS, timeout=30)
        assert again.status_code in (200, 202), again.text
        status, first = answers.get(pcs_id, ("not sent", None))
        if status in (200, 202):
            assert again.status_code == status and again.json() == {**first, "dedup": True}
        elif status == 503:
            assert again.json()["dedup"] is True  # stored by the replay
    assert len(stored_pcs_ids(env["DATABASE_URL"])) == len(sent)
