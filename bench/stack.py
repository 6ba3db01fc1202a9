"""The service as the benchmarks run it: a throwaway PostgreSQL database, migrated, under real gunicorn."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flk_site.testing import ServiceProcess, manage  # noqa: E402

HMAC_KEY = "bench-key"


@contextmanager
def throwaway_service(
    *, name: str, pg: str, redis_url: str, workers: int, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[ServiceProcess, Path, str]]:
    """Yield (service, work directory, database URL); everything is removed afterwards.

    The service signs with HMAC (``HMAC_KEY``), keeps its WAL under the work directory and has its rate
    limit raised out of the way (still one Redis round trip per request).
    """
    db_name = f"bench_{name}_{os.getpid()}"
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    work = Path(tempfile.mkdtemp(prefix=f"flk-{name}-bench-"))
    env = {
        "DATABASE_URL": f"{pg}/{db_name}",
        "REDIS_URL": redis_url,
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_DEBUG": "0",
        "PCS_SIGN_ALG": "hmac",
        "PCS_HMAC_KEY": HMAC_KEY,
        "TOKEN_RATE": "1000000",
        "FLK_VAR_DIR": str(work / "var"),
        "FLK_WAL_DIR": str(work / "wal"),
        **(extra_env or {}),
    }
    service = None
    try:
        manage(env, "migrate", "--noinput", "-v", "0")
        service = ServiceProcess(env, workers=workers)
        yield service, work, f"{pg}/{db_name}"
    finally:
        if service is not None:
            service.stop()
            try:  # a worker that outlived its master's graceful stop must not keep the database open
                os.killpg(service.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_group(service_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the service (gunicorn master and workers), PostgreSQL and Redis."""
    used = {"service": 0.0, "postgres": 0.0, "redis": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # exited meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
        if int(entry) == service_pid or int(fields[1]) == service_pid:
            used["service"] += seconds
        elif name.startswith("postgres"):
            used["postgres"] += seconds
        elif name.startswith("redis-server"):
            used["redis"] += seconds
    return used
