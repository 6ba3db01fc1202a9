"""A PostgreSQL crash right after a load: every answered PCS is in the database at restart, without a replay.

The test runs a PostgreSQL cluster of its own so that it can crash it as a power cut would (SIGQUIT to the
postmaster: no checkpoint, no WAL flush) without touching the shared one.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import requests

from flk_site.testing import ServiceProcess, make_pcs, manage, service_env, signed, stored_pcs_ids

HEADERS = {"Content-Type": "application/json"}


def test_every_answered_outcome_is_in_the_database_after_a_crash_without_a_replay(postgres_cluster, tmp_path):
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    env = service_env(
        postgres_cluster.create_database("flk"), redis_url, tmp_path, TOKEN_RATE="100000", TOKEN_BURST="100000"
    )
    manage(env, "migrate", "--noinput", "-v", "0")
    service = ServiceProcess(env, workers=2)
    session = requests.Session()

    def submit(pcs: dict) -> requests.Response:
        return session.post(f"{service.url}/v1/pcs/submit", data=json.dumps(pcs), headers=HEADERS, timeout=30)

    answered: dict[str, tuple[dict, int, dict]] = {}  # pcs_id: the PCS, its status and answer
    try:
        for _ in range(3):  # each round: a burst of submissions, a crash right after the last answer, a restart
            batch = [signed(make_pcs()) for _ in range(40)]
            with ThreadPoolExecutor(8) as pool:
                responses = list(pool.map(submit, batch))
            postgres_cluster.crash()
            for pcs, response in zip(batch, responses, strict=True):
                assert response.status_code in (200, 202), response.text
                answered[pcs["pcs_id"]] = (pcs, response.status_code, response.json())
            postgres_cluster.start()
            stored = stored_pcs_ids(postgres_cluster.url("flk"))
            assert len(stored) == len(set(stored))
            missing = set(answered) - set(stored)
            assert not missing, f"{len(missing)} answered PCS missing after the crash"
        # The stored outcome is the one that was answered: a resubmission gets it back as a replay.
        for pcs, status, body in answered.values():
            again = submit(pcs)
            assert again.status_code == status and again.json() == {**body, "dedup": True}
    finally:
        service.stop()
