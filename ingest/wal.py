"""The inbox WAL: every request body is made durable here before it is parsed or acknowledged.

On-disk format. A WAL directory (``FLK_WAL_DIR``) holds segment files named
``inbox-<start µs>-<pid>-<seq>.wal``; each process writes only its own segments, so the hot path takes
no cross-process lock. A segment is a sequence of records::

    magic  b"FLKW"          4 bytes
    length uint32 BE        bytes of the payload that follows the header
    crc32  uint32 BE        CRC32 of the payload
    payload:
        received_at  int64 BE   microseconds since the Unix epoch (UTC)
        tenant_len   uint16 BE  the tenant's length; its top bits mark a batch body (BATCH_FLAG, and
                                NDJSON_FLAG for one in NDJSON); tenants are at most 64 bytes
        tenant       UTF-8
        body         the request body, byte for byte (any bytes, newlines included)

A batch (``POST /v1/pcs/batch``) is one record holding its whole body; a reader yields one ``WalRecord``
per item of it (``ingest.batch_items``), at the record's position, so the replay sees each PCS as if it had
come alone. A batch with more items than FLK_BATCH_MAX_ITEMS was refused (413) and yields none.

A reader checks magic, a sane length and the CRC; a record that fails any check (a torn tail after a
crash, a flipped bit) is skipped and the reader resynchronises on the next magic, so a bad record is
never mis-parsed as a body. The writer writes zeros ahead of its records (a segment's file is longer than
its records); a run of zeros to the end of the file is the segment's clean end. A record never starts
with a zero byte (the magic does not), so the zeros cannot be mistaken for one.

Durability (group commit, leader/follower). One writer per process owns the open segment. ``append``
queues its record, then takes the writer's sync lock: the thread that gets it (the leader) writes
everything queued so far with one ``write`` and one ``fdatasync``; the threads that queued meanwhile
find their record already synced when their turn at the lock comes, and return at once. No request
returns before its own record is on disk, yet concurrent requests share an fsync, with no writer thread
to wake and no broadcast to every waiter on each sync.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from ingest import metrics
from ingest.batch_items import BatchMalformed, split_items

MAGIC = b"FLKW"
_HEADER = struct.Struct(">4sII")
_PAYLOAD_PREFIX = struct.Struct(">qH")
BATCH_FLAG, NDJSON_FLAG = 0x8000, 0x4000
_TENANT_LENGTH = 0x3FFF
BATCH_JSON, BATCH_NDJSON = "json", "ndjson"  # the kinds of batch body
# A length above this is taken as corruption, not as a record: bodies are capped far lower (FLK_MAX_BODY_BYTES).
MAX_RECORD_BYTES = 16 * 1024 * 1024
SEGMENT_SUFFIX = ".wal"
# Zeros written ahead of the records of a segment (see WalWriter._fill_ahead), at most this much at a time.
PREALLOCATE_BYTES = 4 * 1024 * 1024
_ZEROS = memoryview(bytes(1024 * 1024))


class WalUnavailable(Exception):
    """The WAL could not make a record durable (disk full, read-only or missing directory, I/O error)."""


class WalFull(WalUnavailable):
    """The WAL's file system is down to its reserve (FLK_WAL_MIN_FREE_BYTES): nothing more is written."""


class _FreeSpace:
    """The free bytes of the WAL's file system, asked of the kernel at most every ``max_age`` seconds.

    The last line of defence of the disk, whatever fills it (the byte budgets of ``ingest.ratelimit`` bound
    what unauthenticated requests write; this bounds everything, signed backlogs included). Between two
    looks the bytes this process appended are subtracted, so a burst cannot overshoot by more than what
    the other processes wrote in that time.
    """

    def __init__(self, max_age: float = 1.0):
        self.max_age = max_age
        self._lock = threading.Lock()
        self._free: dict[str, tuple[float, int]] = {}

    def has_room(self, directory: Path, size: int, reserve: int) -> bool:
        if reserve <= 0:
            return True
        key = str(directory)
        now = time.monotonic()
        with self._lock:
            seen = self._free.get(key)
            if seen is None or now - seen[0] >= self.max_age:
                try:
                    stats = os.statvfs(directory if directory.is_dir() else directory.parent)
                except OSError:
                    return True  # the append itself reports what is wrong with the directory
                seen = (now, stats.f_bavail * stats.f_frsize)
            free = seen[1] - size
            self._free[key] = (seen[0], free)
        return free >= reserve

    def clear(self) -> None:
        with self._lock:
            self._free.clear()


free_space = _FreeSpace()


@dataclass(frozen=True, order=True)
class WalPosition:
    segment: str
    offset: int


@dataclass(frozen=True)
class WalRecord:
    position: WalPosition
    tenant: str
    received_at: datetime
    body: bytes  # one PCS body: a single submission's, or one item of a batch


def encode_record(tenant: str, body: bytes, received_at: datetime, batch: str = "") -> bytes:
    """Frame one record: header (magic, payload length, CRC32 of the payload) followed by the payload.

    ``batch``: "" for a single submission, ``BATCH_JSON`` or ``BATCH_NDJSON`` for a batch body.
    """
    tenant_bytes = tenant.encode("utf-8")
    if len(tenant_bytes) > _TENANT_LENGTH:
        raise ValueError("tenant name too long for the WAL")
    flags = {"": 0, BATCH_JSON: BATCH_FLAG, BATCH_NDJSON: BATCH_FLAG | NDJSON_FLAG}[batch]
    micros = int(received_at.timestamp() * 1_000_000)
    payload = _PAYLOAD_PREFIX.pack(micros, len(tenant_bytes) | flags) + tenant_bytes + body
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes) -> tuple[str, datetime, bytes, str] | None:
    if len(payload) < _PAYLOAD_PREFIX.size:
        return None
    micros, tenant_field = _PAYLOAD_PREFIX.unpack_from(payload)
    tenant_len = tenant_field & _TENANT_LENGTH
    batch = "" if not tenant_field & BATCH_FLAG else BATCH_NDJSON if tenant_field & NDJSON_FLAG else BATCH_JSON
    start = _PAYLOAD_PREFIX.size
    if start + tenant_len > len(payload):
        return None
    try:
        tenant = payload[start : start + tenant_len].decode("utf-8")
        received_at = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
    except (UnicodeDecodeError, ValueError, OverflowError, OSError):
        return None
    return tenant, received_at, payload[start + tenant_len :], batch


def _bodies(body: bytes, batch: str) -> list[bytes]:
    """The PCS bodies of a record: itself, or the items of a batch the request path did not refuse whole."""
    if not batch:
        return [body]
    try:
        items = split_items(body, ndjson=batch == BATCH_NDJSON)
    except BatchMalformed:
        return []  # answered 400 as a whole: no item of it was judged
    if len(items) > getattr(settings, "FLK_BATCH_MAX_ITEMS", 500):
        return []
    # An item larger than a single submission may be was answered 413, as it would have been alone.
    limit = getattr(settings, "FLK_MAX_BODY_BYTES", 65536)
    return [item for item in items if len(item) <= limit]


@dataclass
class SegmentScan:
    """What reading one segment found: good records are yielded, bad bytes are counted here."""

    records: int = 0
    skipped_bytes: int = 0
    corrupt: int = 0


def read_segment(path: Path, scan: SegmentScan | None = None) -> Iterator[WalRecord]:
    """Yield the intact records of one segment in order, skipping torn or corrupt ones."""
    scan = scan if scan is not None else SegmentScan()
    data = path.read_bytes()
    offset, end = 0, len(data)
    while offset < end:
        good = False
        if end - offset >= _HEADER.size:
            magic, length, crc = _HEADER.unpack_from(data, offset)
            stop = offset + _HEADER.size + length
            if magic == MAGIC and length <= MAX_RECORD_BYTES and stop <= end:
                payload = data[offset + _HEADER.size : stop]
                if zlib.crc32(payload) == crc and (decoded := _decode_payload(payload)) is not None:
                    tenant, received_at, body, batch = decoded
                    scan.records += 1
                    for item in _bodies(body, batch):
                        yield WalRecord(WalPosition(path.name, offset), tenant, received_at, item)
                    offset = stop
                    good = True
        if not good:
            if data.count(0, offset) == end - offset:
                break  # the zeros written ahead of the records: the segment's clean end
            # Resynchronise on the next magic after this byte; everything before it is unreadable.
            scan.corrupt += 1
            following = data.find(MAGIC, offset + 1)
            # With no record after it, the bad bytes stop where the zeros ahead of the records begin.
            following = len(data.rstrip(b"\0")) if following < 0 else following
            scan.skipped_bytes += following - offset
            offset = following


def segments(directory: Path | None = None) -> list[Path]:
    """The segment files of a WAL directory, oldest first (names start with the segment's start time)."""
    directory = Path(directory or settings.FLK_WAL_DIR)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith("inbox-") and p.name.endswith(SEGMENT_SUFFIX))


def iter_records(directory: Path | None = None) -> Iterator[WalRecord]:
    """Every intact record of every segment, oldest segment first."""
    for path in segments(directory):
        try:
            yield from read_segment(path)
        except FileNotFoundError:  # deleted by retention while we listed
            continue


class _Pending:
    __slots__ = ("data", "done", "error", "position")

    def __init__(self, data: bytes):
        self.data = data
        self.done = False
        self.error: OSError | None = None
        self.position: WalPosition | None = None


class WalWriter:
    """The single writer of one process for one directory: batches appends into one write + fdatasync."""

    def __init__(self, directory: Path, segment_bytes: int, segment_seconds: float):
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self.pid = os.getpid()
        self._queue_lock = threading.Lock()  # held only to add to or take the queue
        self._sync_lock = threading.Lock()  # held by the leader while it writes and syncs a batch
        self._queue: list[_Pending] = []
        self._fd: int | None = None
        self._segment_name = ""
        self._segment_size = 0  # bytes of records: where the next record goes
        self._segment_filled = 0  # bytes of the file already written (records, then zeros ahead of them)
        self._preallocate = True
        self._segment_opened = 0.0
        self._seq = 0

    def append(self, data: bytes) -> WalPosition:
        pending = _Pending(data)
        with self._queue_lock:
            self._queue.append(pending)
        with self._sync_lock:
            if not pending.done:  # no earlier leader took it: lead a batch of everything queued so far
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._sync(batch)
        if pending.error is not None:
            raise WalUnavailable(f"the inbox WAL could not be written: {pending.error}") from pending.error
        assert pending.position is not None
        return pending.position

    def close(self) -> None:
        """Close the segment once the appends in progress are synced (a later append opens a new one)."""
        with self._sync_lock:
            self._close()

    def _sync(self, batch: list[_Pending]) -> None:
        error: OSError | None = None
        try:
            self._write_batch(batch)
        except Exception as exc:  # anything at all: every request of the batch must get an answer
            error = exc if isinstance(exc, OSError) else OSError(f"{type(exc).__name__}: {exc}")
            metrics.wal_error()
            # A failed write may have left a partial record: never append after it, start a new segment.
            self._close()
        for pending in batch:
            pending.error = error
            pending.done = True

    def _write_batch(self, batch: list[_Pending]) -> None:
        self._rotate_if_due()
        assert self._fd is not None
        offset = self._segment_size
        for pending in batch:
            pending.position = WalPosition(self._segment_name, offset)
            offset += len(pending.data)
        self._fill_ahead(offset)
        data = memoryview(b"".join(p.data for p in batch))
        position = self._segment_size
        while data:
            written = os.pwrite(self._fd, data, position)
            data, position = data[written:], position + written
        os.fdatasync(self._fd)
        self._segment_size = offset
        self._segment_filled = max(self._segment_filled, offset)
        metrics.wal_appended(len(batch))
        metrics.wal_batch_synced()

    def _fill_ahead(self, needed: int) -> None:
        """Write zeros ahead of the records, a chunk at a time, so that appends overwrite allocated blocks.

        An append that grows the file makes every fdatasync also allocate blocks and commit the file
        system's journal (the new size); overwriting blocks already written needs neither, which halves
        the cost of a sync. The zeros reach the disk with the batch's own fdatasync. If they cannot be
        written (disk nearly full), the segment goes on growing by appends: the space left still serves.
        """
        if not self._preallocate or needed <= self._segment_filled:
            return
        chunk = min(PREALLOCATE_BYTES, max(self.segment_bytes, 4096))
        target = -(-needed // chunk) * chunk
        try:
            while self._segment_filled < target:
                piece = min(target - self._segment_filled, len(_ZEROS))
                self._segment_filled += os.pwrite(self._fd, _ZEROS[:piece], self._segment_filled)
        except OSError:
            self._preallocate = False

    def _rotate_if_due(self) -> None:
        if self._fd is not None and (
            self._segment_size >= self.segment_bytes or time.monotonic() - self._segment_opened >= self.segment_seconds
        ):
            self._close()
        if self._fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            name = f"inbox-{time.time_ns() // 1000:017d}-{self.pid}-{self._seq:06d}{SEGMENT_SUFFIX}"
            fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            # The new directory entry must survive a crash too, or the segment could vanish with its records.
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            self._fd, self._segment_name, self._segment_size = fd, name, 0
            self._segment_filled, self._preallocate = 0, True
            self._segment_opened = time.monotonic()

    def _close(self) -> None:
        """Close the segment, cut back to its records: no zeros ahead, no partial record, no empty file.

        Without this a closed segment keeps up to PREALLOCATE_BYTES of zeros, and a write or sync that keeps
        failing (an I/O error) would leave a new segment of zeros behind for every request it fails.
        """
        if self._fd is None:
            return
        try:
            if self._segment_size == 0:
                os.unlink(self.directory / self._segment_name)
            else:
                before = os.fstat(self._fd)
                os.ftruncate(self._fd, self._segment_size)
                # Retention goes by the time of the last record, not of this cut.
                os.utime(self._fd, ns=(before.st_atime_ns, before.st_mtime_ns))
        except OSError:  # the zeros read as a clean end and a partial record is skipped: only space is lost
            pass
        try:
            os.close(self._fd)
        except OSError:
            pass
        self._fd = None

    def active_segment(self) -> str:
        return self._segment_name if self._fd is not None else ""


_writers: dict[tuple[int, str], WalWriter] = {}
_writers_lock = threading.Lock()


def writer(directory: Path | None = None) -> WalWriter:
    """This process's writer for ``directory`` (a forked child gets its own writer and segments)."""
    directory = Path(directory or settings.FLK_WAL_DIR)
    key = (os.getpid(), str(directory))
    found = _writers.get(key)
    if found is not None:
        return found
    with _writers_lock:
        found = _writers.get(key)
        if found is None:
            found = WalWriter(
                directory,
                segment_bytes=getattr(settings, "FLK_WAL_SEGMENT_BYTES", 64 * 1024 * 1024),
                segment_seconds=getattr(settings, "FLK_WAL_SEGMENT_SECONDS", 3600.0),
            )
            _writers[key] = found
        return found


def append(tenant: str, body: bytes, received_at: datetime, batch: str = "") -> WalPosition:
    """Append one body (``batch``: of a batch, see ``encode_record``) and return once it is on disk; raises
    WalUnavailable on any OS error, WalFull (before writing) when the file system is down to its reserve."""
    data = encode_record(tenant, body, received_at, batch)
    directory = Path(settings.FLK_WAL_DIR)
    if not free_space.has_room(directory, len(data), getattr(settings, "FLK_WAL_MIN_FREE_BYTES", 0)):
        metrics.wal_error()
        raise WalFull("the inbox WAL's file system has less than FLK_WAL_MIN_FREE_BYTES free")
    try:
        return writer().append(data)
    except OSError as exc:  # e.g. the writer could not even be created
        metrics.wal_error()
        raise WalUnavailable(f"the inbox WAL could not be written: {exc}") from exc


def close_writers() -> None:
    """Close this process's writers and their segments (at exit; tests use it to hand segments over)."""
    pid = os.getpid()
    with _writers_lock:
        mine = [key for key in _writers if key[0] == pid]
        closing = [_writers.pop(key) for key in mine]
    for w in closing:
        w.close()


def active_segments() -> set[str]:
    """Names of the segments this process has open (never deleted by retention)."""
    pid = os.getpid()
    return {w.active_segment() for (p, _), w in list(_writers.items()) if p == pid} - {""}


def check_writable(directory: Path | None = None) -> None:
    """Raise WalUnavailable unless a file can be created, written and synced in the WAL directory."""
    directory = Path(directory or settings.FLK_WAL_DIR)
    probe = directory / f".probe-{os.getpid()}-{threading.get_ident()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, b"ok")
            os.fdatasync(fd)
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise WalUnavailable(f"the inbox WAL directory {directory} is not writable: {exc}") from exc
