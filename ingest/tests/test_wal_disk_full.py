"""A full disk fails the append with WalUnavailable; every append that returned stays readable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ingest import wal

# Run in a child process: the file-size limit that stands in for a full disk must not touch the test runner.
CHILD = """
import json, os, resource, signal, sys
import django
django.setup()
from datetime import datetime, timezone
from ingest import wal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
writer = wal.WalWriter(sys.argv[1], segment_bytes=10**9, segment_seconds=3600)
ok, failed = [], 0
for i in range(40):
    body = json.dumps({"n": i, "pad": "x" * 200}).encode()
    try:
        writer.append(wal.encode_record("default", body, datetime.now(timezone.utc)))
        ok.append(i)
    except wal.WalUnavailable:
        failed += 1
print(json.dumps({"ok": ok, "failed": failed}))
"""


def test_appends_fail_cleanly_when_the_disk_is_full_and_acknowledged_records_stay_readable(tmp_path: Path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "flk_site.test_settings"}
    result = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], env=env, capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["failed"] > 0 and len(outcome["ok"]) > 0
    readable = [json.loads(r.body)["n"] for r in wal.iter_records(tmp_path)]
    assert readable == outcome["ok"]
