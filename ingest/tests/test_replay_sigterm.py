"""SIGTERM stops manage.py replay_wal after the batch in hand: whole batches stored, a rerun finishes the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection
from django.utils import timezone

from flk_site.testing import ensure_defaults, make_pcs
from ingest import replay, wal
from ingest.models import PcsRecord

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_stops_the_replay_between_batches(transactional_db, settings, tmp_path):
    ensure_defaults()
    settings.PCS_SIGN_ALG = "none"
    writer = wal.WalWriter(tmp_path / "wal", segment_bytes=10**9, segment_seconds=3600)
    for _ in range(3000):
        writer.append(wal.encode_record("default", json.dumps(make_pcs()).encode(), timezone.now()))
    writer.close()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flk_site.settings",
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "DJANGO_SECRET_KEY": "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_DEBUG": "0", "PCS_SIGN_ALG": "none", "FLK_ALLOW_UNSIGNED": "1", "FLK_VAR_DIR": str(tmp_path / "var"),
    }  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "manage.py", "replay_wal", "--dir", str(tmp_path / "wal"), "--batch-size", "100"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while PcsRecord.objects.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)

    assert child.returncode == 0, err[-2000:]
    assert "interrupted by SIGTERM" in out
    stored = PcsRecord.objects.count()
    assert 0 < stored < 3000 and stored % 100 == 0  # only whole batches were committed
    assert replay.replay_wal(tmp_path / "wal").stored == 3000 - stored
    assert PcsRecord.objects.count() == 3000
