"""`make run` starts celery beat beside the server: without REDIS_URL its tasks run eagerly in the beat process."""

from __future__ import annotations

import pytest
from celery.beat import ScheduleEntry, Scheduler
from celery.result import EagerResult

from flk_site.celery import app

pytestmark = pytest.mark.django_db


def test_every_scheduled_task_runs_in_the_beat_process_when_tasks_are_eager(settings, tmp_path):
    # An empty WAL of its own: replaying the suite's would store other tests' bodies on the replay threads'
    # own connections, outside this test's transaction.
    settings.FLK_WAL_DIR = tmp_path / "wal"
    # What `celery beat` does at start (celery.apps.beat.Beat.run): import every app's tasks.
    app.loader.init_worker()
    assert app.conf.task_always_eager  # as the embedded default sets it (no REDIS_URL)
    scheduler = Scheduler(app, lazy=True)
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        result = scheduler.apply_async(
            ScheduleEntry(name=name, task=entry["task"], schedule=entry["schedule"], app=app)
        )
        assert isinstance(result, EagerResult), f"{name} was sent to a broker nobody reads"
        assert result.successful(), f"{name}: {result.traceback}"
