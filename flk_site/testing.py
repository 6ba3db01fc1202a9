"""Factories shared by the test suite: valid PCS, signatures, request bodies."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from typing import Any

from agent_client import signing
from agent_client.pcs import assemble_pcs, sign_pcs

HMAC_KEY = b"testkey"
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


def ed25519_public_b64(seed: bytes = ED25519_SEED) -> str:
    return signing.ed25519_public_key_b64(seed)


def body(pcs: dict[str, Any]) -> bytes:
    return json.dumps(pcs).encode()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def ensure_defaults() -> None:
    """Recreate what the data migration made (the default tenant, active VerifyParams v1).

    Transactional tests flush the database, migration data included.
    """
    from ingest.models import Tenant, VerifyParams

    Tenant.objects.get_or_create(name="default", defaults={"sign_alg": "none"})
    if not VerifyParams.objects.filter(is_active=True).exists():
        VerifyParams.objects.get_or_create(version=1, defaults={"is_active": True, "reason": "Protocol defaults."})


def reset_config_memos() -> None:
    from calibration.services import snapshot_memo
    from ingest.keyring import credentials_memo
    from ingest.params import active_params_memo

    credentials_memo.clear()
    active_params_memo.clear()
    snapshot_memo.clear()


class ServiceProcess:
    """``gunicorn flk_site.wsgi`` in a subprocess on a free loopback port, configured by environment.

    Used by tests that need the service as operators run it: several workers, real signals, SIGKILL.
    """

    def __init__(self, env: dict[str, str], workers: int = 2, cwd: str | None = None):
        import os
        import socket
        import subprocess
        import sys
        from pathlib import Path

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
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
