"""The packages depend on each other one way only, as the Layout section of docs/index.md draws it.

    flk_site -> review -> ingest -> policy -> tenancy -> calibration -> agent_client

An app may import any app to its right, never one to its left, with two named exceptions: the project-wide
helpers of flk_site that import no app (Redis connections, environment parsing, query-string numbers), and
policy's read of stored outcomes (what-if replays them, its admin links to them). Every import counts, also
one inside a function. Tests and migrations are outside the rule.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["flk_site", "review", "ingest", "policy", "tenancy", "calibration", "agent_client"]
SHARED_HELPERS = {"flk_site.shared_redis", "flk_site.env", "flk_site.query"}
NAMED_EDGES = {
    ("policy/whatif.py", "ingest.models"),  # what-if re-verifies recent stored PCS
    ("policy/admin.py", "ingest.models"),  # what-if examples link to the stored PCS
}


def _imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found.append((next((n for n in names[1:] if n in SHARED_HELPERS), node.module), node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
    return found


def _sources(package: str) -> list[Path]:
    return [
        path
        for path in sorted((ROOT / package).rglob("*.py"))
        if "tests" not in path.parts and "migrations" not in path.parts and "node_modules" not in path.parts
    ]


def _violations() -> list[str]:
    found = []
    for package in ORDER:
        for path in _sources(package):
            relative = path.relative_to(ROOT).as_posix()
            for module, line in _imports(path):
                target = module.split(".")[0]
                if target not in ORDER or target == package:
                    continue
                if ORDER.index(target) > ORDER.index(package):
                    continue  # downward: allowed
                if module in SHARED_HELPERS or (relative, module) in NAMED_EDGES:
                    continue
                found.append(f"{relative}:{line} imports {module} ({package} may not depend on {target})")
    return found


def test_every_import_points_down_the_layout():
    assert _violations() == []


def test_the_shared_helpers_import_no_app():
    for module in SHARED_HELPERS:
        path = ROOT / (module.replace(".", "/") + ".py")
        apps = {name.split(".")[0] for name, _ in _imports(path)} & set(ORDER)
        assert apps == set(), f"{module} imports {apps}: it would tie every app to flk_site"


@pytest.mark.parametrize(
    "source, expected",
    [
        (
            "from review.models import ReviewItem\n",
            "ingest/x.py:1 imports review.models (ingest may not depend on review)",
        ),
        ("def f():\n    from ingest import wal\n", "policy/x.py:2 imports ingest (policy may not depend on ingest)"),
        ("import policy.params\n", "tenancy/x.py:1 imports policy.params (tenancy may not depend on policy)"),
    ],
)
def test_an_upward_import_is_reported(tmp_path, monkeypatch, source, expected):
    # The check itself: an upward import written into a scratch copy of the layout is found, with its line.
    package = expected.split("/")[0]
    for name in ORDER:
        (tmp_path / name).mkdir()
    (tmp_path / package / "x.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _violations() == [expected]


def test_each_module_says_what_it_owns():
    missing = [
        path.relative_to(ROOT).as_posix()
        for package in ("tenancy", "policy", "ingest")
        for path in _sources(package)
        if path.stat().st_size and path.name != "apps.py" and ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert missing == []
