"""The agent package imports no Django, so it runs beside a workload that has none."""

from __future__ import annotations

import subprocess
import sys


def test_every_agent_module_imports_without_django():
    code = (
        "import sys\n"
        "import agent_client.builder, agent_client.cli, agent_client.outbox, agent_client.sender, agent_client.signals\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in {'django', 'rest_framework', 'ingest', 'flk_site'}]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr
