"""A 30-second outage never dead-letters: the PCS stay pending through it and are delivered once it ends."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from django.db import connection

from flk_site.testing import FLK_AGENT, ServiceProcess, free_port, outbox_status, pcs_files, service_env
from ingest.models import PcsRecord

pytestmark = pytest.mark.slow


def test_a_30_second_outage_leaves_every_pcs_pending_and_delivered_after(transactional_db, tmp_path):
    from flk_site.testing import ensure_defaults

    ensure_defaults()
    port = free_port()
    outbox = tmp_path / "outbox"
    files = pcs_files(tmp_path / "pcs", 12, "outage")
    submit = subprocess.Popen([FLK_AGENT, "submit", "--endpoint", f"http://127.0.0.1:{port}", "--outbox",
                               str(outbox), *files], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    service = None
    try:
        time.sleep(30)  # the service is down all this time: refused connections
        status = outbox_status(outbox)
        assert submit.poll() is None, "the agent gave up during a 30 s outage"
        assert status["pending"] == 12 and status["dead_letters"] == 0
        db = connection.settings_dict
        database = (
            f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        env = service_env(database, os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"), tmp_path)
        service = ServiceProcess(env, port=port)
        _, err = submit.communicate(timeout=120)
    finally:
        if submit.poll() is None:
            submit.kill()
        if service is not None:
            service.stop()
    assert submit.returncode == 0, err
    assert "delivered 12, dead letters 0, pending 0" in err
    assert outbox_status(outbox)["pending"] == 0
    assert PcsRecord.objects.count() == 12
