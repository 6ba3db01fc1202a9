"""Factories shared by the test suite: valid PCS, signatures, request bodies."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent_client import signing
from agent_client.pcs import assemble_pcs, sign_pcs

HMAC_KEY = b"testkey"
FLK_AGENT = str(Path(sys.executable).with_name("flk-agent"))  # the console script of this environment
ED25519_SEED = bytes(range(32))
_counter = itertools.count(1)


def make_pcs(
    *,
    shard_id: str | None = None,
    epoch: int | None = None,
    counts: dict | None = None,
    coh_star: float = 0.73,
    r: float = 0.87,
    degraded: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """A valid, consistent, unsigned PCS with a fresh pcs_id unless ``shard_id``/``epoch`` pin it."""
    n = next(_counter)
    scales = [2, 4, 8, 16, 32]
    pcs = assemble_pcs(
        merkle_root=hashlib.sha256(f"events-{n}".encode()).hexdigest(),
        epoch=n if epoch is None else epoch,
        shard_id=shard_id or f"shard-{n:04d}",
        scales=scales,
        counts=counts or {2: 3, 4: 5, 8: 9, 16: 17, 32: 31},
        coh_star=coh_star,
        r=r,
        v_star=[0.12, 0.98, -0.05],
        seed=42,
        degraded=degraded,
        fallbacks=["coh_star"] if degraded else [],
    )
    pcs.update(overrides)
    return pcs


def signed(pcs: dict[str, Any], alg: str = "hmac", key: bytes | None = None) -> dict[str, Any]:
    key = key if key is not None else (HMAC_KEY if alg == "hmac" else ED25519_SEED)
    return sign_pcs(pcs, alg, key)


def pcs_files(directory: Any, count: int, shard_prefix: str) -> list[str]:
    """``count`` PCS signed with the test HMAC key, one JSON file each in ``directory`` (made if missing),
    of shards ``<shard_prefix>-0``, ``-1``...: the paths, for ``flk-agent submit``."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        path = folder / f"{shard_prefix}-{k:05d}.json"
        path.write_text(json.dumps(signed(make_pcs(shard_id=f"{shard_prefix}-{k}"))))
        paths.append(str(path))
    return paths


def outbox_status(outbox: Any) -> dict[str, Any]:
    """What ``flk-agent outbox status`` prints for the outbox directory ``outbox``, as a dict."""
    done = subprocess.run([FLK_AGENT, "outbox", "status", "--outbox", str(outbox)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"flk-agent outbox status exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def ed25519_public_b64(seed: bytes = ED25519_SEED) -> str:
    return signing.ed25519_public_key_b64(seed)


def body(pcs: dict[str, Any]) -> bytes:
    return json.dumps(pcs).encode()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def logged_in(user: Any) -> Any:
    """A test client of its own, logged in as ``user`` (several users side by side, each with its session)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def ensure_defaults() -> None:
    """Recreate what the data migrations made: the default tenant, active VerifyParams v1, the reviewers group.

    Transactional tests flush the database, migration data included; conftest.py calls this after every flush.
    """
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from policy.models import VerifyParams
    from tenancy.models import Tenant

    Tenant.objects.get_or_create(name="default", defaults={"sign_alg": "none"})
    if not VerifyParams.objects.filter(is_active=True).exists():
        VerifyParams.objects.get_or_create(
            version=1, defaults={"is_active": True, "reason": "Protocol defaults.", "activated_at": timezone.now()}
        )
    Group.objects.get_or_create(name="reviewers")


def issue_api_key(tenant: str = "default", name: str = "reader") -> str:
    """A new API key of ``tenant`` (the credential GET /v1/pcs/<pcs_id> needs), made as admins make it."""
    from tenancy.models import ApiKey, Tenant

    return ApiKey(tenant=Tenant.objects.get(name=tenant), name=name).issue()


def bearer(key: str) -> dict[str, str]:
    """The test client's header argument for ``Authorization: Bearer <key>``."""
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def reset_config_memos() -> None:
    from calibration.services import snapshot_memo
    from policy.params import active_params_memo
    from tenancy.keyring import credentials_memo

    credentials_memo.clear()
    active_params_memo.clear()
    snapshot_memo.clear()


class ServiceProcess:
    """``gunicorn flk_site.wsgi`` in a subprocess on a free loopback port, configured by environment.

    Used by tests that need the service as operators run it: several workers, real signals, SIGKILL.
    """

    def __init__(self, env: dict[str, str], workers: int = 2, cwd: str | None = None, port: int | None = None):
        """``port``: the one to bind (a service started again where its clients expect it); a free one if None."""
        import os
        import subprocess
        import sys
        from pathlib import Path

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root = Path(__file__).resolve().parent.parent
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "flk_site.settings", "WEB_CONCURRENCY": str(workers), **env}
        self.log_path = Path(env.get("FLK_VAR_DIR", "/tmp")) / f"gunicorn-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [gunicorn, "flk_site.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers)],
            cwd=cwd or root,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.wait_ready()
        except BaseException:  # a service that never became ready must not outlive the test
            self.stop()
            raise

    def wait_ready(self, timeout: float = 30.0) -> None:
        import time

        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-3000:]}")
            try:
                requests.get(f"{self.url}/v1/pcs/{'0' * 64}", timeout=1, allow_redirects=False)
                return
            except (requests.ConnectionError, requests.Timeout):  # a cold worker on a busy machine may be slow
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer in {timeout}s: {self.log_path.read_text()[-3000:]}")

    def kill(self, sig: int = 9) -> None:
        """Send ``sig`` to gunicorn's whole process group (master and workers)."""
        import os

        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        import signal

        self.kill(signal.SIGTERM)
        self._log.close()


def service_env(database_url: str, redis_url: str, directory: Any, **extra: str) -> dict[str, str]:
    """The environment of a test's gunicorn service: HMAC key "testkey", WAL and files under ``directory``."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_SECRET_KEY": "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_DEBUG": "0",
        "PCS_SIGN_ALG": "hmac",
        "PCS_HMAC_KEY": HMAC_KEY.decode(),
        "FLK_VAR_DIR": f"{directory}/var",
        "FLK_WAL_DIR": f"{directory}/wal",
        **extra,
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> str:
    """``manage.py ARGS`` in a subprocess with ``env`` (as operators run it); its output, or RuntimeError."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([sys.executable, "manage.py", *args], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent,
                          env={**os.environ, **env, "DJANGO_SETTINGS_MODULE": "flk_site.settings"})  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def stored_pcs_ids(database_url: str) -> list[str]:
    """The pcs_id of every stored outcome, read straight from the database (repeats included)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute("SELECT pcs_id FROM ingest_pcsrecord")]


class PostgresCluster:
    """A PostgreSQL cluster of a test's own (initdb in a temporary directory) on a free loopback port.

    For tests that crash the database as a power cut would, without touching the shared server. Run as the
    postgres user when the tests run as root (PostgreSQL refuses to run as root).
    """

    def __init__(self) -> None:
        import os
        import shutil
        import subprocess
        import tempfile
        from pathlib import Path

        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        self.bindir = Path(found.stdout.strip())
        self.root = Path(tempfile.mkdtemp(prefix="flk-test-pg-", dir="/tmp"))  # reachable by the postgres user
        self.data = self.root / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        import os
        import subprocess

        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def crash(self) -> None:
        """SIGQUIT to the postmaster: every process exits at once, nothing is flushed or checkpointed."""
        import os
        import signal
        import time

        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 30
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        import shutil
        import subprocess

        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A redis-server of a test's own on a free loopback port, which the test can stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        self.start()

    def start(self) -> None:
        import subprocess
        import time

        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
