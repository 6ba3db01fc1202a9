"""`pip install ./agent_client`, editable or not, leaves a fresh clone as it was: no build/, no *.egg-info."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _pip(*args: str) -> None:
    # The build backend (hatchling, pinned in requirements-dev.txt) comes from this environment: no download.
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def _untracked(clone: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout


def test_an_editable_install_reads_the_checkout_and_writes_nothing_into_it(tmp_path):
    clone = tmp_path / "flk"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    target = tmp_path / "target"
    own_script = Path(sys.executable).with_name("flk-agent")
    had_own_script = own_script.exists()
    # --target installs beside this environment, never over it (--prefix would uninstall its flk-agent first).
    _pip("--editable", str(clone / "agent_client"), "--target", str(target))
    assert own_script.exists() == had_own_script
    assert _untracked(clone) == ""
    assert (target / "bin" / "flk-agent").exists()
    # Without this environment's site-packages (-S), where the suite's own editable install points elsewhere.
    code = (
        f"import importlib.util, site; site.addsitedir({str(target)!r}); "
        "print(importlib.util.find_spec('agent_client').origin)"
    )
    found = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert found.stdout.strip() == str(clone / "agent_client" / "__init__.py"), found.stderr


def test_a_wheel_holds_the_package_without_its_tests_and_writes_nothing_into_the_checkout(tmp_path):
    clone = tmp_path / "flk"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    wheel_args = ["wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "pip", *wheel_args, str(clone / "agent_client")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert _untracked(clone) == ""
    (wheel,) = tmp_path.glob("flk_agent_client-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "agent_client/__init__.py" in names and "agent_client/cli.py" in names
    assert not [name for name in names if "/tests/" in name or name.endswith("pyproject.toml")]
