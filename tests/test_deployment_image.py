"""The image builds in two stages, runs as a non-root user, checks its health, and the Compose agent works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flk_site.testing import HMAC_KEY

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_image_is_multi_stage_on_python_slim_and_runs_as_a_non_root_user():
    steps = instructions()
    stages = [args for word, args in steps if word == "FROM"]
    assert len(stages) >= 2 and all(stage.startswith("python:3.11-slim") for stage in stages)
    runtime = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    assert any(word == "COPY" and args.startswith("--from=build") for word, args in runtime)
    (user,) = [args for word, args in runtime if word == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    # Requirements are installed in the build stage only: the runtime stage has no pip install.
    assert not [args for word, args in runtime if word == "RUN" and "pip install" in args]


def test_static_files_are_collected_at_build_with_throwaway_settings():
    steps = instructions()
    (collect,) = [args for word, args in steps if word == "RUN" and "collectstatic" in args]
    assert "DJANGO_SECRET_KEY=" in collect and "DJANGO_DEBUG=0" in collect
    env = " ".join(args for word, args in steps if word == "ENV")
    assert "DJANGO_SECRET_KEY" not in env, "the build-time secret must not stay in the image"


def test_image_checks_its_health_and_serves_with_gunicorn_by_default():
    steps = dict(instructions())
    assert "/healthz" in steps["HEALTHCHECK"]
    assert steps["CMD"] == '["gunicorn", "flk_site.wsgi"]'


def test_build_context_leaves_out_secrets_and_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", "var", "node_modules"} <= set(ignored)


@pytest.mark.slow
def test_the_compose_agent_submits_signed_synthetic_pcs(gunicorn_service):
    service = gunicorn_service()
    agent = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["agent"]
    python, flag, script = agent["entrypoint"]
    assert (python, flag) == ("python", "-c")
    env = {**os.environ, "PCS_HMAC_KEY": HMAC_KEY.decode()}
    result = subprocess.run(
        [sys.executable, "-c", script, "20", f"{service.url}/v1/pcs/submit"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # 20 PCS: 18 consistent (200) and 2 degraded (202); every fifth is sent twice and gets the same answer again.
    assert "answers by status {200: 20, 202: 4}" in result.stdout, result.stdout
