"""A newcomer's first hour: the README's quick start, run in a fresh clone with nothing exported.

`make run` in the background, then each documented `manage.py` command from another shell (no exports: the
settings `make run` chose are read from var/local.env), the README's submit and agent examples, and what a
user notices on the way: JSON errors under /v1/, the password's whereabouts, hosts that follow HOST, beat.
The clone shares this suite's virtual environment (a symlinked .venv/ whose install stamps are current), so
`make run` skips the install and runs its migrate, quickstart, beat and runserver steps for real.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def readme_block(clone: Path, opening: str, contains: str) -> str:
    """The README's code block that opens with ``opening`` and holds ``contains``, as a reader copies it."""
    text = (clone / "README.md").read_text()
    blocks = [block.split("\n```", 1)[0] for block in text.split(opening)[1:]]
    (block,) = [block for block in blocks if contains in block]
    return block


def _shell_env(home: Path) -> dict[str, str]:
    """A new user's shell: none of the variables this suite sets for itself."""
    prefixes = ("DJANGO_", "FLK_", "PCS_", "TOKEN_", "METRICS_", "PROMETHEUS_", "DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["HOME"] = str(home)
    env.pop("VIRTUAL_ENV", None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MakeRun:
    """`make run` in its own process group, stopped as Ctrl-C would."""

    def __init__(self, clone: Path, env: dict[str, str], port: int, host: str = "127.0.0.1"):
        self.port = port
        self.log = clone.parent / f"make-run-{port}.log"
        self.proc = subprocess.Popen(
            ["make", "run", f"PORT={port}", f"HOST={host}"],
            cwd=clone,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"make run exited:\n{self.output()}"
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"make run did not serve within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    root = tmp_path_factory.mktemp("newcomer")
    clone = root / "flk"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    (clone / ".venv").symlink_to(Path(sys.prefix))
    # Requirements older than the venv's install stamps, as after `make run` in this checkout: make installs nothing.
    for name in ("requirements.txt", "requirements-dev.txt"):
        os.utime(clone / name, (0, 0))
    home = root / "home"
    home.mkdir()
    return clone, _shell_env(home)


def _manage(clone: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run(
        [".venv/bin/python", "manage.py", *args], cwd=clone, env=env, capture_output=True, text=True, timeout=300
    )
    print(f"manage.py {' '.join(args)}: {time.monotonic() - started:.1f} s")
    return done


def test_the_quick_start_then_every_documented_command_works_without_exports(fresh_clone):
    clone, env = fresh_clone
    server = MakeRun(clone, env, _free_port())
    try:
        server.wait_ready()
        base = f"http://127.0.0.1:{server.port}"
        printed = server.output()

        # What `make run` prints is what the README shows, at the port it was given.
        shown = readme_block(clone, "```\n", "FLK verifier is starting.").replace(":8000/", f":{server.port}/")
        assert shown.strip() in printed, printed

        # The password's whereabouts are printed, not a copy that goes stale when it is changed.
        password = (clone / "var" / "admin-password").read_text().strip()
        assert "Log in as 'admin' with the password in var/admin-password" in printed
        assert password not in printed
        login = requests.Session()
        page = login.get(f"{base}/admin/login/")
        assert page.status_code == 200
        answer = login.post(
            f"{base}/admin/login/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": login.cookies["csrftoken"]},
            headers={"Referer": f"{base}/admin/login/"},
        )
        assert answer.status_code == 200 and "/login/" not in answer.url, "the stored password does not log in"

        # The trial's settings are kept for later commands, readable by their owner only, out of git.
        local = clone / "var" / "local.env"
        assert stat.S_IMODE(local.stat().st_mode) == 0o600
        assert "DJANGO_DEBUG=1" in local.read_text().splitlines()
        assert subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout == ""

        # The README's submit example: accepted, then the same answer again with dedup.
        snippet = readme_block(clone, "<<'PY' > /tmp/pcs.json\n", "assemble_pcs").split("\nPY\n")[0]
        built = subprocess.run(
            [".venv/bin/python", "-"], input=snippet, cwd=clone, env=env, capture_output=True, text=True
        )
        assert built.returncode == 0, built.stderr
        first = requests.post(f"{base}/v1/pcs/submit", data=built.stdout, headers={"Content-Type": "application/json"})
        assert first.status_code == 200 and first.json()["accepted"] is True and first.json()["dedup"] is False
        again = requests.post(f"{base}/v1/pcs/submit", data=built.stdout, headers={"Content-Type": "application/json"})
        assert again.status_code == 200 and again.json()["dedup"] is True

        # Every /v1/ error is JSON, debug pages or not.
        missing = requests.get(f"{base}/v1/no-such-endpoint")
        assert missing.status_code == 404
        assert missing.headers["Content-Type"] == "application/json"
        assert missing.json()["code"] == "not_found"

        # Beat runs beside the server (its schedule file appears as it starts).
        deadline = time.monotonic() + 30
        while not list((clone / "var").glob("celerybeat-schedule*")) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert list((clone / "var").glob("celerybeat-schedule*")), "celery beat did not start with make run"

        # Each documented manage.py command, from other shells, nothing exported: two rounds of commands that
        # may run side by side (the second reads what the first wrote).
        rounds = [
            [
                (["replay_wal"], "replay_wal: "),
                (["recalibrate", "--dry-run"], "(dry run: nothing stored)"),
                (["export_labels", "-o", "var/labels.csv"], "Exported 0 labels"),
                (["create_api_key", "default", "--name", "grafana"], "shown once"),
            ],
            [
                (["replay_wal", "--purge"], "retention: "),
                (["recalibrate"], "recalibrated "),
                (["import_labels", "var/labels.csv"], ""),
            ],
        ]
        keys: list[str] = []
        for commands in rounds:
            with ThreadPoolExecutor(len(commands)) as pool:
                finished = list(pool.map(lambda command: _manage(clone, env, *command[0]), commands))
            for (args, summary), done in zip(commands, finished, strict=True):
                if args[0] == "create_api_key":
                    keys.append(done.stdout.strip())
                said = f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
                assert done.returncode == 0, said
                assert summary in done.stdout + done.stderr, said
                assert "Traceback" not in done.stderr, said

        # The API key create_api_key printed reads the README's PCS at once: the server learns of a change made
        # by another process on its next request (no Redis: through var/generations/), not 30 s later.
        (key,) = keys
        outcome = requests.get(f"{base}/v1/pcs/{first.json()['pcs_id']}", headers={"Authorization": f"Bearer {key}"})
        assert outcome.status_code == 200, outcome.text
        assert outcome.json()["decision"] == "accept"

        # The README's agent example, in the user's own directory, its outbox where a user may write.
        work = env["HOME"]
        example = readme_block(clone, "```python\n", "Sender(").replace("http://127.0.0.1:8000", base)
        first_try = re.search(r"for a first try, (np\.save\(.*\))$", example, re.MULTILINE)
        assert first_try, "the README's agent example says how to make a work.npy to try it on"
        subprocess.run([str(clone / ".venv/bin/python"), "-c", f"import numpy as np; {first_try[1]}"], cwd=work,
                       check=True)  # fmt: skip
        agent = subprocess.run(
            [str(clone / ".venv/bin/python"), "-"], input=example, cwd=work, env=env, capture_output=True, text=True
        )
        assert agent.returncode == 0, agent.stderr
        assert agent.stdout.strip() in ("200", "202")
        cli = clone / ".venv" / "bin" / "flk-agent"
        built_cli = subprocess.run(
            [str(cli), *"build --in work.npy --shard-id shard-2 --epoch 7 --seed 42 --out pcs.json".split()],
            cwd=work,
            env={**env, "PCS_HMAC_KEY": "secret"},
            capture_output=True,
            text=True,
        )
        assert built_cli.returncode == 0, built_cli.stderr
        sent = subprocess.run(
            [str(cli), "submit", "--endpoint", base, "pcs.json"], cwd=work, env=env, capture_output=True, text=True
        )
        assert sent.returncode == 0, sent.stderr
        assert json.loads((Path(work) / "pcs.json").read_text())["shard_id"] == "shard-2"
    finally:
        server.stop()


def test_with_host_set_the_allowed_hosts_follow(fresh_clone):
    clone, env = fresh_clone
    server = MakeRun(clone, env, _free_port(), host="0.0.0.0")
    try:
        server.wait_ready()
        # A name of this machine other than 127.0.0.1, as a colleague on the network would use.
        answer = requests.get(
            f"http://127.0.0.1:{server.port}/v1/pcs/{'0' * 64}", headers={"Host": f"flk-trial.example:{server.port}"}
        )
        assert answer.status_code != 400, answer.text
        assert answer.headers["Content-Type"] == "application/json"
    finally:
        server.stop()
    # The settings kept for later commands follow the last run; the environment still wins over them.
    assert "DJANGO_ALLOWED_HOSTS=*" in (clone / "var" / "local.env").read_text().splitlines()
    shell = _manage(
        clone,
        {**env, "DJANGO_ALLOWED_HOSTS": "only.example"},
        "shell",
        "-c",
        "from django.conf import settings;print(settings.ALLOWED_HOSTS)",
    )
    assert shell.stdout.strip().splitlines()[-1] == "['only.example']", shell.stderr
