"""A gunicorn worker killed with SIGKILL in the middle of a load loses no acknowledged PCS and duplicates none."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import requests
from django.core.management import call_command

from flk_site.testing import make_pcs, signed
from ingest.models import PcsRecord

HEADERS = {"Content-Type": "application/json"}


def worker_pids(master: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            pids.append(int(stat.parent.name))
    return pids


def test_sigkill_of_a_worker_under_load_loses_and_duplicates_nothing(gunicorn_service, settings, tmp_path):
    service = gunicorn_service(workers=2, TOKEN_RATE="100000", TOKEN_BURST="100000")  # load, not rate limits
    assert len(worker_pids(service.process.pid)) == 2
    pcs_by_id = {}
    acknowledged: dict[str, int] = {}
    unanswered: list[str] = []
    lock = threading.Lock()
    started, stop = threading.Event(), threading.Event()

    def client() -> None:
        session = requests.Session()
        while not stop.is_set():  # the load lasts until the last kill, however fast the service is
            pcs = signed(make_pcs())
            with lock:
                pcs_by_id[pcs["pcs_id"]] = pcs
            started.set()
            try:
                r = session.post(f"{service.url}/v1/pcs/submit", data=json.dumps(pcs), headers=HEADERS, timeout=30)
            except requests.RequestException:
                with lock:
                    unanswered.append(pcs["pcs_id"])
                session = requests.Session()
                continue
            with lock:
                if r.status_code in (200, 202):
                    acknowledged[pcs["pcs_id"]] = r.status_code
                else:
                    unanswered.append(pcs["pcs_id"])

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    started.wait(10)
    killed = []
    for _ in range(4):  # several kills, each while requests are in flight
        time.sleep(0.4)
        pid = worker_pids(service.process.pid)[0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()

    deadline = time.monotonic() + 15
    while set(killed) & set(worker_pids(service.process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)  # the master reaps a killed worker and forks its replacement
    assert not set(killed) & set(worker_pids(service.process.pid))
    assert len(acknowledged) > 0
    settings.PCS_SIGN_ALG, settings.PCS_HMAC_KEYS = "hmac", ["testkey"]
    out = io.StringIO()
    call_command("replay_wal", dir=tmp_path / "wal", stdout=out)

    rows = list(PcsRecord.objects.values_list("pcs_id", "status_code"))
    stored = dict(rows)
    assert len(rows) == len(stored)  # one row per pcs_id
    assert all(stored.get(pcs_id) == status for pcs_id, status in acknowledged.items())
    # The client retries what went unanswered: each gets one answer, stored once, whether or not it was kept.
    for pcs_id in unanswered:
        again = requests.post(
            f"{service.url}/v1/pcs/submit", data=json.dumps(pcs_by_id[pcs_id]), headers=HEADERS, timeout=30
        )
        assert again.status_code == 200
    assert PcsRecord.objects.count() == len(pcs_by_id)
    assert set(PcsRecord.objects.values_list("pcs_id", flat=True)) == set(pcs_by_id)
