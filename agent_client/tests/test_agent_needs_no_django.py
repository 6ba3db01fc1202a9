"""The agent package imports no Django, so it runs beside a workload that has none, and installs on its own."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent


def test_every_agent_module_imports_without_django():
    code = (
        "import sys\n"
        "import agent_client.builder, agent_client.cli, agent_client.outbox, agent_client.sender, agent_client.signals\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in {'django', 'rest_framework', 'ingest', 'flk_site'}]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_package_the_agent_imports_is_one_its_pyproject_declares():
    # `pip install ./agent_client` installs only what its pyproject.toml names: a module imported but not
    # declared works in the project's environment and fails beside a user's workload.
    declared = {
        _canonical(re.match(r"[A-Za-z0-9_.-]+", requirement).group())
        for requirement in tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    imported = set()
    for module in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"agent_client", "__future__"}
    distributions = importlib.metadata.packages_distributions()
    needed = {_canonical(dist) for name in third_party for dist in distributions[name]}
    assert third_party and needed <= declared, f"imported but not declared: {sorted(needed - declared)}"
