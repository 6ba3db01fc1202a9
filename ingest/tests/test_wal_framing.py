"""Inbox WAL records come back byte for byte; torn tails and corrupt records are skipped, never mis-parsed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest import wal

RECEIVED = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)
AWKWARD_BODIES = [
    b'{"a": 1}\n{"b": 2}\n',
    bytes(range(256)),
    b"FLKW" * 10,  # the magic itself inside a body
    b"",
    "é ünïcödé \u2028 line separator".encode(),
]


def write_at_the_end_of_the_records(segment, data: bytes) -> None:
    """Where the next record would have gone: the writer writes zeros ahead of its records."""
    records = list(wal.read_segment(segment))
    last = records[-1]
    end = last.position.offset + len(wal.encode_record(last.tenant, last.body, last.received_at))
    with open(segment, "r+b") as f:
        f.seek(end)
        f.write(data)


@pytest.fixture
def wal_dir(settings, tmp_path):
    settings.FLK_WAL_DIR = tmp_path / "wal"
    return settings.FLK_WAL_DIR


def test_bodies_with_newlines_and_any_bytes_round_trip(wal_dir):
    for i, body in enumerate(AWKWARD_BODIES):
        wal.append(f"tenant-{i}", body, RECEIVED)
    records = list(wal.iter_records())
    assert [r.body for r in records] == AWKWARD_BODIES
    assert [r.tenant for r in records] == [f"tenant-{i}" for i in range(len(AWKWARD_BODIES))]
    assert all(r.received_at == RECEIVED for r in records)


def test_a_torn_tail_is_skipped_and_earlier_records_survive(wal_dir):
    wal.append("default", b'{"first": true}', RECEIVED)
    wal.append("default", b'{"second": true}', RECEIVED)
    (segment,) = wal.segments()
    # A crash in the middle of a write: the last record is cut short.
    torn = wal.encode_record("default", b'{"third": "never acknowledged"}', RECEIVED)[:-7]
    write_at_the_end_of_the_records(segment, torn)
    scan = wal.SegmentScan()
    bodies = [r.body for r in wal.read_segment(segment, scan)]
    assert bodies == [b'{"first": true}', b'{"second": true}']
    assert scan.corrupt == 1 and scan.skipped_bytes == len(torn)


def test_a_corrupt_record_in_the_middle_is_skipped_and_the_next_one_is_read(wal_dir):
    for body in (b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'):
        wal.append("default", body, RECEIVED)
    (segment,) = wal.segments()
    data = bytearray(segment.read_bytes())
    second = next(r for r in wal.read_segment(segment) if r.body == b'{"n": 2}').position.offset
    data[second + 20] ^= 0xFF  # a damaged byte inside the second record's payload
    segment.write_bytes(bytes(data))
    assert [r.body for r in wal.read_segment(segment)] == [b'{"n": 1}', b'{"n": 3}']


def test_a_length_pointing_past_the_end_is_not_read_as_a_body(wal_dir):
    wal.append("default", b'{"n": 1}', RECEIVED)
    (segment,) = wal.segments()
    write_at_the_end_of_the_records(segment, wal.MAGIC + (2**31).to_bytes(4, "big") + b"\0\0\0\0" + b"garbage")
    assert [r.body for r in wal.read_segment(segment)] == [b'{"n": 1}']


def test_the_zeros_written_ahead_of_the_records_are_a_clean_end(wal_dir):
    bodies = [b'{"n": 1}', b"\0\0 a body may end with zero bytes \0\0"]
    for body in bodies:
        wal.append("default", body, RECEIVED)
    (segment,) = wal.segments()
    scan = wal.SegmentScan()
    assert [r.body for r in wal.read_segment(segment, scan)] == bodies
    assert segment.stat().st_size > sum(len(wal.encode_record("default", b, RECEIVED)) for b in bodies)
    assert scan.corrupt == 0 and scan.skipped_bytes == 0


def test_a_segment_of_plain_appends_without_zeros_reads_the_same(wal_dir, tmp_path):
    """Segments written before the zeros ahead, or on a disk too full for them, end at their last record."""
    records = [wal.encode_record("default", b, RECEIVED) for b in AWKWARD_BODIES]
    segment = tmp_path / "inbox-00000000000000001-1-000001.wal"
    segment.write_bytes(b"".join(records))
    scan = wal.SegmentScan()
    assert [r.body for r in wal.read_segment(segment, scan)] == AWKWARD_BODIES
    assert scan.corrupt == 0
