"""WAL segments rotate by size and by age; every record stays readable across segments, in order."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ingest import wal

RECEIVED = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_segments_rotate_when_full_and_records_stay_in_order(tmp_path):
    writer = wal.WalWriter(tmp_path, segment_bytes=1000, segment_seconds=3600)
    bodies = [f'{{"n": {i}, "pad": "{"x" * 200}"}}'.encode() for i in range(20)]
    for body in bodies:
        writer.append(wal.encode_record("default", body, RECEIVED))
    assert len(wal.segments(tmp_path)) >= 4
    for segment in wal.segments(tmp_path):  # no record starts past the size limit: the segment rotated
        assert list(wal.read_segment(segment))[-1].position.offset < 1000
    assert [r.body for r in wal.iter_records(tmp_path)] == bodies


def test_an_old_segment_is_closed_before_the_next_append(tmp_path):
    writer = wal.WalWriter(tmp_path, segment_bytes=10**9, segment_seconds=0.2)
    writer.append(wal.encode_record("default", b"{}", RECEIVED))
    writer.append(wal.encode_record("default", b"{}", RECEIVED))
    time.sleep(0.3)
    writer.append(wal.encode_record("default", b"{}", RECEIVED))
    assert len(wal.segments(tmp_path)) == 2


def test_each_process_names_its_segments_with_its_pid(tmp_path):
    import os

    wal.WalWriter(tmp_path, segment_bytes=10**9, segment_seconds=3600).append(
        wal.encode_record("default", b"{}", RECEIVED)
    )
    (segment,) = wal.segments(tmp_path)
    assert f"-{os.getpid()}-" in segment.name
