"""The agent package imports no Django, so it runs beside a workload that has none, and installs on its own."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
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
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    declared = {
        _canonical(re.match(r"[A-Za-z0-9_.-]+", requirement).group()) for requirement in project["dependencies"]
    }
    assert _imports_outside_the_stdlib(PACKAGE.glob("*.py"), exclude="text.py") <= declared
    # The text path (agent_client/text.py) may import what the "text" extra adds, and nothing else.
    extra = {_canonical(re.match(r"[A-Za-z0-9_.-]+", r).group()) for r in project["optional-dependencies"]["text"]}
    assert _imports_outside_the_stdlib([PACKAGE / "text.py"]) <= declared | extra


def test_the_base_agent_never_imports_the_text_extra():
    code = (
        "import sys\n"
        "import agent_client.builder, agent_client.cli, agent_client.sender, agent_client.signals\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in {'torch', 'sentence_transformers', 'transformers'}]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr


def _imports_outside_the_stdlib(modules: Iterable[Path], exclude: str = "") -> set[str]:
    """The distributions the ``modules`` import (their canonical names), the standard library left out."""
    imported = set()
    for module in modules:
        if module.name == exclude:
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"agent_client", "__future__"}
    distributions = importlib.metadata.packages_distributions()
    assert third_party
    return {_canonical(dist) for name in third_party for dist in distributions[name]}
