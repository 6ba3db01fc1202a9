"""The stack a load or chaos run owns: PostgreSQL and Redis of its own, gunicorn, a Celery worker, nginx.

Nothing here touches the machine's shared PostgreSQL (5432) or Redis (6379): the database is a private
cluster (``flk_site.testing.PostgresCluster``, initdb on a free port, run as the postgres user) and Redis a
``redis-server`` on a free port that saves nothing. The service runs as deployed (docs/operators/deployment.md):
plain ``gunicorn flk_site.wsgi`` under ``gunicorn.conf.py`` for the API (``FLK_CONSOLE_PAGES=0``), a second
pool for the console pages (logins, review, admin), a Celery worker, and the shipped nginx configuration
(``deploy/nginx/flk.conf.template``) in front of both, which clients reach. Each fault the chaos run injects
is a method: real signals to real processes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from flk_site.testing import PostgresCluster, RedisServer, ServiceProcess, free_port, manage  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = ROOT / "deploy" / "nginx" / "flk.conf.template"
CELERY = str(Path(sys.executable).with_name("celery"))


class Proxy:
    """deploy/nginx/flk.conf.template rendered as the nginx image renders it, in an nginx of the run's own."""

    def __init__(self, root: Path, web: str, console: str):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rendered = TEMPLATE.read_text()
        for name, value in {"FLK_WEB_UPSTREAM": web, "FLK_CONSOLE_UPSTREAM": console,
                            "FLK_PROXY_PORT": f"127.0.0.1:{self.port}", "FLK_FORWARDED_PROTO": "$scheme"}.items():  # fmt: skip
            rendered = rendered.replace("${" + name + "}", value)
        root.mkdir(parents=True, exist_ok=True)
        (root / "flk.conf").write_text(rendered)
        for temp in ("body", "proxy"):
            (root / temp).mkdir(exist_ok=True)
            (root / temp).chmod(0o777)  # nginx's workers run as an unprivileged user
        (root / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {root}/nginx.pid;\nerror_log {root}/error.log;\n"
            "events { worker_connections 2048; }\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {root}/body;\n"
            f"  proxy_temp_path {root}/proxy;\n  include {root}/flk.conf;\n}}\n"
        )
        self.process = subprocess.Popen([NGINX, "-p", str(root), "-c", str(root / "nginx.conf")],
                                        stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {(root / 'error.log').read_text()[-2000:]}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class LoadStack:
    """The whole stack in ``work`` (removed by ``close``); ``url`` is the proxy clients talk to."""

    def __init__(self, work: Path, *, tenants: list[str], web_workers: int | None = None, console_workers: int = 2,
                 reviewers: int = 2, extra_env: dict[str, str] | None = None):  # fmt: skip
        self.work = work
        self.web_workers = web_workers or int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
        self.console_workers = console_workers
        self.cluster: PostgresCluster | None = None
        self.redis: RedisServer | None = None
        self.web: ServiceProcess | None = None
        self.console: ServiceProcess | None = None
        self.worker: subprocess.Popen | None = None
        self.proxy: Proxy | None = None
        try:
            self.cluster = PostgresCluster()
            self.redis = RedisServer()
            self.database_url = self.cluster.create_database("flk")
            self.env = {
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis.url,
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
                "DJANGO_DEBUG": "0",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "PCS_SIGN_ALG": "hmac",
                "PCS_HMAC_KEY": secrets.token_urlsafe(24),
                # nginx is the one proxy: the client address is the one it saw (each simulated agent sends its
                # own X-Forwarded-For, so per-address limits see many clients, as behind a real edge).
                "FLK_TRUSTED_PROXIES": "127.0.0.1/32",
                "FLK_VAR_DIR": str(work / "var"),
                "FLK_WAL_DIR": str(work / "wal"),
                "FLK_WAL_MIN_FREE_BYTES": "0",
                **(extra_env or {}),
            }
            manage(self.env, "migrate", "--noinput", "-v", "0")
            self.credentials_path = work / "credentials.json"
            self._seed(tenants, reviewers)
            self.web = self._start_web()
            self.console = ServiceProcess({**self.env, "FLK_CONSOLE_PAGES": "1"}, workers=console_workers)
            self.start_worker()
            self.proxy = Proxy(work / "nginx", f"127.0.0.1:{self.web.port}", f"127.0.0.1:{self.console.port}")
            self.url = self.proxy.url
        except BaseException:
            self.close()
            raise

    def _seed(self, tenants: list[str], reviewers: int) -> None:
        done = subprocess.run([sys.executable, str(Path(__file__).with_name("tenants.py")), str(self.credentials_path),
                               *tenants, "--reviewers", str(reviewers)],
                              env={**os.environ, **self.env, "DJANGO_SETTINGS_MODULE": "flk_site.settings"},
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"creating the tenants failed: {done.stderr[-2000:]}")

    @property
    def credentials(self) -> dict:
        return json.loads(self.credentials_path.read_text())

    def _start_web(self, extra_env: dict[str, str] | None = None, port: int | None = None) -> ServiceProcess:
        return ServiceProcess({**self.env, "FLK_CONSOLE_PAGES": "0", **(extra_env or {})}, workers=self.web_workers,
                              port=port)  # fmt: skip

    # Faults. Each returns when the fault is in place (a stop) or over (a restart).

    def restart_web(self, extra_env: dict[str, str] | None = None) -> None:
        """SIGKILL to gunicorn's master and workers, as a killed container; then the same command again."""
        assert self.web is not None
        port = self.web.port
        self.web.kill(signal.SIGKILL)
        self.web = self._start_web(extra_env, port=port)

    def start_worker(self) -> None:
        log = open(self.work / "celery.log", "ab")  # the worker writes to it until it exits
        self.worker = subprocess.Popen(
            [CELERY, "-A", "flk_site", "worker", "--loglevel", "warning", "--concurrency", "2", "-Q", "flk"],
            cwd=ROOT, env={**os.environ, **self.env, "DJANGO_SETTINGS_MODULE": "flk_site.settings"},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()

    def kill_worker(self) -> None:
        """SIGKILL to the Celery worker and its pool (tasks in hand are redelivered: acks_late); then start one."""
        assert self.worker is not None
        try:
            os.killpg(self.worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.worker.wait(timeout=30)
        self.start_worker()

    def stop_database(self) -> None:
        """A clean shutdown (pg_ctl -m fast): connections are closed, new ones refused."""
        assert self.cluster is not None
        self.cluster._run("pg_ctl", "-D", str(self.cluster.data), "-m", "fast", "-w", "stop")

    def crash_database(self) -> None:
        """An immediate shutdown (SIGQUIT to the postmaster): nothing flushed or checkpointed, crash recovery next."""
        assert self.cluster is not None
        self.cluster.crash()

    def start_database(self) -> None:
        assert self.cluster is not None
        self.cluster.start()

    def stop_redis(self) -> None:
        assert self.redis is not None
        self.redis.stop()

    def start_redis(self) -> None:
        assert self.redis is not None
        self.redis.start()

    # What the database holds, read without the service's models (the accounting needs rows, not objects).

    def stored_rows(self) -> tuple[list[tuple[str, str, int, bool]], list[tuple[str, str]]]:
        """(tenant, pcs_id, status, waits for a label) of every stored outcome, and (tenant, pcs_id) of every
        review item. An outcome waits for a label when it was escalated, rejected or drawn for the audit."""
        with psycopg.connect(self.database_url) as conn:
            records = conn.execute("SELECT t.name, r.pcs_id, r.status_code, "
                                   "r.decision IN ('escalate', 'reject') OR r.audit_sample FROM ingest_pcsrecord r "
                                   "JOIN ingest_tenant t ON t.id = r.tenant_id").fetchall()  # fmt: skip
            items = conn.execute("SELECT tenant, pcs_id FROM review_reviewitem").fetchall()
        return [tuple(r) for r in records], [tuple(i) for i in items]

    def replay_wal(self) -> str:
        return manage(self.env, "replay_wal").strip()

    def close(self) -> None:
        for stop in (lambda: self.proxy and self.proxy.stop(), lambda: self.web and self.web.kill(signal.SIGKILL),
                     lambda: self.console and self.console.kill(signal.SIGKILL),
                     lambda: self.worker and os.killpg(self.worker.pid, signal.SIGKILL),
                     lambda: self.redis and self.redis.stop(), lambda: self.cluster and self.cluster.remove()):  # fmt: skip
            try:
                stop()
            except (ProcessLookupError, OSError, subprocess.SubprocessError):
                pass


def work_directory(name: str) -> Path:
    """A fresh directory under /tmp the postgres user can reach, for one run's files."""
    return Path(tempfile.mkdtemp(prefix=f"flk-{name}-"))
