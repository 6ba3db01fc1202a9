"""Concurrent appends share fsyncs, yet each returns only once its own record is on disk."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from ingest import wal

RECEIVED = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


class CountingWriter(wal.WalWriter):
    """Records, at each fsync, how many bytes the segment holds, to check appends return after their sync."""

    def __init__(self, *args, **kwargs):
        self.synced_upto: dict[str, int] = {}
        self.batches = 0
        super().__init__(*args, **kwargs)

    def _write_batch(self, batch):
        super()._write_batch(batch)
        self.batches += 1
        self.synced_upto[self._segment_name] = self._segment_size


def test_many_threads_appending_share_fsyncs_and_every_record_is_durable(tmp_path):
    writer = CountingWriter(tmp_path, segment_bytes=10**9, segment_seconds=3600)
    threads, per_thread = 32, 50
    positions: list[tuple[bytes, wal.WalPosition]] = []
    early: list[wal.WalPosition] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        for i in range(per_thread):
            body = f'{{"thread": {t}, "i": {i}}}\n'.encode()
            record = wal.encode_record("default", body, RECEIVED)
            position = writer.append(record)
            # When append returns, an fsync has covered this record's last byte.
            if writer.synced_upto.get(position.segment, 0) < position.offset + len(record):
                with lock:
                    early.append(position)
            with lock:
                positions.append((body, position))

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()

    assert early == []
    on_disk = {r.position: r.body for r in wal.iter_records(tmp_path)}
    assert len(on_disk) == threads * per_thread
    assert all(on_disk[pos] == body for body, pos in positions)
    assert writer.batches < threads * per_thread
