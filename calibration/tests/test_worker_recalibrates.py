"""A real Celery worker rebuilds the snapshot after labels: once per burst, and again after a relabel."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from calibration import services
from calibration.models import CalibrationSnapshot


@pytest.fixture
def worker(real_celery_worker):
    return real_celery_worker


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
