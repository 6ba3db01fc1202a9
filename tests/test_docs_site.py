"""The documentation site builds with warnings as errors, and its configuration page names every setting."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION = ROOT / "docs" / "operators" / "configuration.md"
# How flk_site reads the environment: env_str/env_int/env_float/env_bool/env_list/env_choice("NAME", ...),
# os.environ.get("NAME") and os.environ["NAME"].
READ = re.compile(r"""(?:\benv_[a-z_]+\(|environ\.get\(|environ\[|getenv\()\s*["']([A-Z][A-Z0-9_]+)["']""")


def test_the_site_builds_strict(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "operators" / "configuration" / "index.html").is_file()


def settings_read() -> set[str]:
    names = set()
    for module in ("settings.py", "env.py"):
        names |= set(READ.findall((ROOT / "flk_site" / module).read_text()))
    return names


def test_every_environment_variable_the_settings_read_is_on_the_configuration_page():
    names = settings_read()
    assert len(names) > 50, "the pattern no longer finds how settings read the environment"
    page = CONFIGURATION.read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", page))
    assert not sorted(names - documented), f"not on {CONFIGURATION.relative_to(ROOT)}: {sorted(names - documented)}"
