"""A real Celery worker rebuilds the snapshot after labels: once per burst, and again after a relabel."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from calibration import services
from calibration.models import CalibrationSnapshot
from flk_site.celery import app as celery_app


@pytest.fixture
def worker(tmp_path):
    """A ``celery -A flk_site worker`` subprocess on its own queue; the test process enqueues to it."""
    queue = f"flk-calibration-test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flk_site.settings",
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/6"),
        "FLK_CELERY_QUEUE": queue,
        "DJANGO_SECRET_KEY": "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "FLK_ALLOW_UNSIGNED": "1",
        "FLK_VAR_DIR": str(tmp_path),
    }
    celery = str(Path(sys.executable).with_name("celery"))
    log_path = tmp_path / "worker.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [celery, "-A", "flk_site", "worker", "-Q", queue, "--pool", "solo", "--concurrency", "1", "--without-heartbeat",
         "--without-mingle", "--without-gossip", "--loglevel", "INFO"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    saved = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = False, queue
    try:
        yield log_path
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = saved
        process.terminate()
        process.wait(timeout=30)
        log.close()


def wait_for(predicate, log_path: Path, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out; worker log:\n{log_path.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_labels_and_a_relabel_rebuild_the_snapshot_on_a_worker(worker, settings, unsigned_default_tenant):
    settings.FLK_CALIBRATION_DEBOUNCE_SECONDS = 1.0
    services.clear_pending("acme")
    for n in range(5):
        services.record_label(tenant="acme", pcs_id=f"p{n}", score=n / 10, label="benign", provenance="audit")

    snapshot = wait_for(lambda: services.current_snapshot("acme"), worker)
    assert snapshot.scores == (0.0, 0.1, 0.2, 0.3, 0.4)
    time.sleep(1.5)  # a second task for the same burst would have run by now
    # One rebuild for the whole burst: no snapshot was made from a partial set.
    assert list(CalibrationSnapshot.objects.filter(tenant="acme").values_list("n", flat=True)) == [5]

    services.record_label(tenant="acme", pcs_id="p4", score=0.4, label="anomalous", provenance="escalation")
    rebuilt = wait_for(lambda: (s := services.current_snapshot("acme")) and s.id != snapshot.id and s, worker)
    assert rebuilt.scores == (0.0, 0.1, 0.2, 0.3)
