"""The settings `make run` keeps in var/local.env: read when present, the environment wins, owner-only, strict."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from flk_site.env import apply_local_settings, read_local_settings, write_local_settings

REPO = Path(__file__).resolve().parents[1]


def test_written_settings_are_readable_by_their_owner_only_and_read_back(tmp_path):
    path = tmp_path / "var" / "local.env"
    write_local_settings(path, {"DJANGO_DEBUG": "1", "DJANGO_SECRET_KEY": "s3cret=="}, header="trial\nsettings")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().splitlines()[:2] == ["# trial", "# settings"]
    assert read_local_settings(path) == {"DJANGO_DEBUG": "1", "DJANGO_SECRET_KEY": "s3cret=="}
    assert read_local_settings(tmp_path / "missing.env") == {}


def test_the_environment_wins_over_the_file(tmp_path, monkeypatch):
    path = tmp_path / "local.env"
    path.write_text("FLK_TEST_LOCAL_A=from-file\nFLK_TEST_LOCAL_B=from-file\n")
    monkeypatch.setenv("FLK_TEST_LOCAL_A", "from-environment")
    monkeypatch.delenv("FLK_TEST_LOCAL_B", raising=False)
    assert apply_local_settings(path) == {"FLK_TEST_LOCAL_B": "from-file"}
    assert os.environ["FLK_TEST_LOCAL_A"] == "from-environment"
    assert os.environ["FLK_TEST_LOCAL_B"] == "from-file"
    monkeypatch.delenv("FLK_TEST_LOCAL_B")


def test_a_line_that_is_not_name_equals_value_is_named_with_its_file_and_line(tmp_path):
    path = tmp_path / "local.env"
    path.write_text("# comment\n\nDJANGO_DEBUG=1\nexport DJANGO_DEBUG=0\n")
    with pytest.raises(ImproperlyConfigured, match=r"local.env, line 4: expected NAME=value"):
        read_local_settings(path)


def test_a_missing_secret_is_one_line_naming_the_variable_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FLK_"))}
    env["FLK_VAR_DIR"] = str(tmp_path)  # no local.env there: nothing chosen by `make run`
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"manage.py: DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off (for a local trial, `make run` once "
        f"keeps its settings in {tmp_path / 'local.env'})"
    ]


def test_the_embedded_database_and_its_directory_are_owner_only(tmp_path):
    """The SQLite file holds tenants' signing secrets and password hashes; its WAL files take its mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FLK_", "DATABASE_", "REDIS_"))}
    var = tmp_path / "var"
    env.update(DJANGO_DEBUG="1", FLK_VAR_DIR=str(var))
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    files = sorted(p.name for p in var.iterdir() if p.name.startswith("flk.sqlite3"))
    assert "flk.sqlite3" in files
    for name in files:
        assert stat.S_IMODE((var / name).stat().st_mode) == 0o600, name
