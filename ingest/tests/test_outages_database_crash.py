"""A PostgreSQL crash right after a load: every answered PCS is in the database at restart, without a replay.

The test runs its own PostgreSQL cluster (initdb in a temporary directory) so that it can crash it as a
power cut would (SIGQUIT to the postmaster: no checkpoint, no WAL flush) without touching the shared one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests

from flk_site.testing import HMAC_KEY, ServiceProcess, make_pcs, signed

ROOT = Path(__file__).resolve().parents[2]
HEADERS = {"Content-Type": "application/json"}


class Cluster:
    """A PostgreSQL cluster of its own on a free loopback port, run as the postgres user when we are root."""

    def __init__(self) -> None:
        self.bindir = Path(
            subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        )
        self.root = Path(tempfile.mkdtemp(prefix="flk-crash-pg-", dir="/tmp"))  # reachable by the postgres user
        self.data = self.root / "data"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def crash(self) -> None:
        """SIGQUIT to the postmaster: every process exits at once, nothing is flushed or checkpointed."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 30
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    pg = Cluster()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


def stored_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT pcs_id FROM ingest_pcsrecord")]


def test_every_answered_outcome_is_in_the_database_after_a_crash_without_a_replay(cluster, tmp_path):
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE flk")
    env = {
        "DATABASE_URL": cluster.url("flk"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "DJANGO_SECRET_KEY": "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_DEBUG": "0",
        "PCS_SIGN_ALG": "hmac",
        "PCS_HMAC_KEY": HMAC_KEY.decode(),
        "TOKEN_RATE": "100000",
        "TOKEN_BURST": "100000",
        "FLK_VAR_DIR": str(tmp_path / "var"),
        "FLK_WAL_DIR": str(tmp_path / "wal"),
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True,
                   env={**os.environ, **env, "DJANGO_SETTINGS_MODULE": "flk_site.settings"}, timeout=300)  # fmt: skip
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
            cluster.crash()
            for pcs, response in zip(batch, responses, strict=True):
                assert response.status_code in (200, 202), response.text
                answered[pcs["pcs_id"]] = (pcs, response.status_code, response.json())
            cluster.start()
            stored = stored_ids(cluster.url("flk"))
            assert len(stored) == len(set(stored))
            missing = set(answered) - set(stored)
            assert not missing, f"{len(missing)} answered PCS missing after the crash"
        # The stored outcome is the one that was answered: a resubmission gets it back as a replay.
        for pcs, status, body in answered.values():
            again = submit(pcs)
            assert again.status_code == status and again.json() == {**body, "dedup": True}
    finally:
        service.stop()
