"""Without Redis (the embedded default), a change announced by one process reaches the copies of another on
its next use, through the files under FLK_VAR_DIR/generations/: no wait for FLK_CONFIG_MAX_AGE_SECONDS.

Two Generation objects on the same key stand for two processes: each counts only its own announcements in
memory, so what one learns of the other's comes through the files alone.
"""

from __future__ import annotations

import stat
import threading

import pytest

from calibration.generations import UNAVAILABLE, Generation, ProcessMemo, read_together, unread_values

KEY = "flk:test-generation"


@pytest.fixture(autouse=True)
def no_redis(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    settings.FLK_CONFIG_MAX_AGE_SECONDS = 3600.0  # age alone would keep a stale copy for an hour


def test_a_copy_follows_an_announcement_made_by_another_process():
    server, command = Generation(KEY), Generation(KEY)
    loads = []
    memo = ProcessMemo(lambda key: loads.append(key) or len(loads), server)
    assert (memo.get("default"), memo.get("default")) == (1, 1)  # kept while nothing is announced

    command.announce()  # e.g. manage.py create_api_key, in another process
    assert memo.get("default") == 2
    assert memo.get("default") == 2


def test_the_request_path_reads_the_files_in_place_of_redis(tmp_path):
    first, second = Generation("flk:a"), Generation("flk:b")
    assert unread_values([first, second]) == read_together([first, second]) == [None, None]  # never announced
    Generation("flk:b").announce()
    none, announced = unread_values([first, second])
    assert none is None and isinstance(announced, str) and len(announced) == 32
    folder = tmp_path / "generations"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == ["flk_b"]  # nothing left aside


def test_concurrent_announcements_never_leave_half_a_value(tmp_path):
    writers = [threading.Thread(target=lambda: [Generation(KEY).announce() for _ in range(200)]) for _ in range(4)]
    seen = []
    for writer in writers:
        writer.start()
    while any(w.is_alive() for w in writers):
        seen.append(Generation(KEY).shared_value())
    for writer in writers:
        writer.join()
    assert all(value is None or (isinstance(value, str) and len(value) == 32) for value in seen)


def test_an_unreadable_file_falls_back_to_expiry_by_age(tmp_path):
    (tmp_path / "generations").mkdir()
    (tmp_path / "generations" / "flk_test-generation").mkdir()  # a directory where the file should be
    assert Generation(KEY).shared_value() == UNAVAILABLE
