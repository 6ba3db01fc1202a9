"""WAL segments rotate by size and by age; every record stays readable across segments, in order."""

from __future__ import annotations

import errno
import os
import time
from datetime import UTC, datetime

import pytest

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
    wal.WalWriter(tmp_path, segment_bytes=10**9, segment_seconds=3600).append(
        wal.encode_record("default", b"{}", RECEIVED)
    )
    (segment,) = wal.segments(tmp_path)
    assert f"-{os.getpid()}-" in segment.name


def test_a_closed_segment_keeps_its_records_and_no_zeros_ahead(tmp_path):
    writer = wal.WalWriter(tmp_path, segment_bytes=10**9, segment_seconds=3600)
    records = [wal.encode_record("default", f'{{"n": {i}}}'.encode(), RECEIVED) for i in range(3)]
    for record in records:
        writer.append(record)
    (segment,) = wal.segments(tmp_path)
    assert segment.stat().st_size >= wal.PREALLOCATE_BYTES  # zeros written ahead while it is open
    writer.close()
    assert segment.stat().st_size == sum(len(r) for r in records)
    assert [r.body for r in wal.iter_records(tmp_path)] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']


def test_a_sync_that_keeps_failing_leaves_no_segments_behind(tmp_path, monkeypatch):
    """An I/O error on every fdatasync: each failed append closes its segment, and none of them stays."""
    writer = wal.WalWriter(tmp_path, segment_bytes=10**9, segment_seconds=3600)
    writer.append(wal.encode_record("default", b'{"kept": true}', RECEIVED))
    real_fdatasync = os.fdatasync

    def failing_fdatasync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing_fdatasync)
    for _ in range(20):
        with pytest.raises(wal.WalUnavailable):
            writer.append(wal.encode_record("default", b'{"lost": true}', RECEIVED))
    segments = wal.segments(tmp_path)
    assert len(segments) == 1  # the first one, cut back to its record; each failed one was removed
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) < 1000
    monkeypatch.setattr(os, "fdatasync", real_fdatasync)
    writer.append(wal.encode_record("default", b'{"after": true}', RECEIVED))
    assert [r.body for r in wal.iter_records(tmp_path)] == [b'{"kept": true}', b'{"after": true}']
