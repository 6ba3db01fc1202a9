"""gunicorn.conf.py: plain `gunicorn flk_site.wsgi` takes its production settings from the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from flk_site.testing import make_pcs, signed

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def _resolved_config(tmp_path: Path, **env: str | None) -> subprocess.CompletedProcess[str]:
    """``gunicorn --print-config`` with ``env`` on top of ours; a None value removes the variable."""
    full_env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": None, "FLK_VAR_DIR": str(tmp_path), **env}
    full_env = {name: value for name, value in full_env.items() if value is not None}
    return subprocess.run([GUNICORN, "--print-config", "flk_site.wsgi"], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def _setting(output: str, name: str) -> str:
    match = re.search(rf"^{name}\s*=\s*(.*)$", output, re.MULTILINE)
    assert match, f"{name} not in the printed configuration"
    return match.group(1).strip()


def test_workers_threads_and_bind_come_from_the_environment(tmp_path):
    result = _resolved_config(
        tmp_path, WEB_CONCURRENCY="3", FLK_GUNICORN_WORKER_CLASS="gthread", FLK_GUNICORN_THREADS="8",
        FLK_BIND="127.0.0.1:9123",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _setting(result.stdout, "workers") == "3"
    assert _setting(result.stdout, "worker_class") == "gthread"
    assert _setting(result.stdout, "threads") == "8"
    assert "127.0.0.1:9123" in _setting(result.stdout, "bind")


def test_without_environment_it_binds_all_interfaces_with_two_sync_workers_per_core(tmp_path):
    env = dict.fromkeys(("WEB_CONCURRENCY", "FLK_GUNICORN_WORKER_CLASS", "FLK_BIND"))
    result = _resolved_config(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    assert _setting(result.stdout, "workers") == str(2 * os.cpu_count())
    assert _setting(result.stdout, "worker_class") == "sync"
    assert "0.0.0.0:8000" in _setting(result.stdout, "bind")
    assert "JsonAccessLogger" in _setting(result.stdout, "logger_class")


def test_an_unknown_worker_class_stops_the_start_with_the_variable_named(tmp_path):
    result = _resolved_config(tmp_path, FLK_GUNICORN_WORKER_CLASS="uvicorn")
    assert result.returncode != 0
    assert "FLK_GUNICORN_WORKER_CLASS" in result.stderr + result.stdout


def test_stale_metric_files_are_removed_at_start(tmp_path):
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    stale = multiproc / "counter_12345.db"
    stale.write_bytes(b"old counts from an earlier run")
    result = _resolved_config(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    assert result.returncode == 0, result.stderr
    assert not stale.exists()


def test_counts_survive_a_worker_killed_with_sigkill(gunicorn_service):
    service = gunicorn_service(workers=1, METRICS_USER="scraper", METRICS_PASS="pw")
    for _ in range(3):
        requests.post(f"{service.url}/v1/pcs/submit", json=signed(make_pcs()), timeout=10)
    [worker] = [int(p) for p in Path(f"/proc/{service.process.pid}/task/{service.process.pid}/children")
                .read_text().split()]  # fmt: skip
    os.kill(worker, 9)
    service.wait_ready()  # the master starts a new worker
    scraped = requests.get(f"{service.url}/metrics", auth=("scraper", "pw"), timeout=10).text
    assert 'flk_accepted_total{tenant="default"} 3.0' in scraped
