"""The agent's outbox WAL and its dead-letter queue (DLQ), as append-only files of records in a directory.

Each line is one record: its JSON, a tab, and the CRC-32 of that JSON in hex. A line whose checksum does
not match is damage (a bit changed on disk), found before anything in it is sent; lines written before
records carried checksums are read as plain JSON.

``outbox.log`` holds ``put`` records (a sequence number, the PCS and its destination: the tenant and the
endpoint it was queued for) and ``ack`` records; an entry is pending until its ack is written. The
destination travels with the record, so a later ``drain`` or ``dlq retry`` sends each PCS where it was
meant to go, whatever the command line of that later run names. A PCS is appended and fsync'd *before* it is sent, so a crash at any
point leaves it pending and a restarted agent sends it again (the server's dedup on ``pcs_id`` makes the
second copy harmless). Acks are flushed but not fsync'd: losing one only causes a harmless resend.

``dlq.log`` holds the PCS the server refused for good, with the server's answer, a short reason (the
server's error code, or ``http_<status>``) and the destination; it is fsync'd, and a ``pcs_id`` appears in
it at most once however many times the same failure is recorded.

Every writer takes an exclusive ``flock`` on ``outbox.lock`` (several agent processes may share one
outbox directory), and compaction replaces the log by rename while holding it; an appender that finds the
file replaced reopens it, so no write lands in an unlinked file. A torn last line (a crash mid-write) is
ignored when reading and cut off before the next append.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_client.canonical import signs_everything

OUTBOX_FILE = "outbox.log"
DLQ_FILE = "dlq.log"
LOCK_FILE = "outbox.lock"


@dataclass(frozen=True)
class Entry:
    """A pending PCS, its outbox sequence number (the PCS's ``ft.outbox_seq`` where ``numbers_pcs``) and its
    destination: the tenant (None: the service's default tenant) and the endpoint it was queued for (None in
    records written before destinations were kept)."""

    seq: int
    pcs: dict[str, Any]
    tenant: str | None = None
    endpoint: str | None = None


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    pcs_id: str
    status: int | None
    error: str
    failed_at: float
    pcs: dict[str, Any]
    reason: str = ""
    tenant: str | None = None
    endpoint: str | None = None


def _dumps(record: dict[str, Any]) -> bytes:
    """One line: the record's JSON, a tab and the CRC-32 of that JSON in hex (JSON never holds a raw tab)."""
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    return b"%s\t%08x\n" % (text, zlib.crc32(text))


def _loads(line: bytes) -> dict[str, Any]:
    """A record from its line; ValueError when its checksum does not match or it is not JSON.

    A line without a checksum (written before records carried one) is read as plain JSON.
    """
    text, tab, checksum = line.rpartition(b"\t")
    if not tab:
        text = line
    elif len(checksum) != 8 or int(checksum, 16) != zlib.crc32(text):
        raise ValueError("checksum mismatch")
    record = json.loads(text)
    if not isinstance(record, dict):
        raise ValueError("not a record")
    return record


def _read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file; an unterminated or undecodable *last* line is a torn write, skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return
    lines = raw.split(b"\n")
    for i, line in enumerate(lines):
        if not line:
            continue
        try:
            record = _loads(line)
        except ValueError:
            if i == len(lines) - 1 or (i == len(lines) - 2 and not lines[-1]):
                return  # torn tail of a crashed write: the record never happened
            raise _damaged(path, i + 1) from None
        yield record


def _damaged(path: Path, line: int) -> OutboxCorrupt:
    return OutboxCorrupt(
        f"{path}: line {line} is not JSON or does not match its checksum, and it is not the last line, so it is "
        "damage rather than a write cut short; nothing is guessed: repair or delete that line, then run again"
    )


class OutboxCorrupt(RuntimeError):
    """A record in the middle of a log file is unreadable: not a torn tail, so not safe to guess."""


class Outbox:
    """The outbox WAL and DLQ in ``directory`` (created when missing)."""

    def __init__(self, directory: str | os.PathLike[str], fsync: bool = True):
        self.dir = Path(directory)
        if self.dir.exists() and not self.dir.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "the outbox must be a directory, and this is a file", str(self.dir))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / OUTBOX_FILE
        self.dlq_path = self.dir / DLQ_FILE
        self.fsync = fsync
        self._thread_lock = threading.Lock()  # flock is per open file, so threads of one process queue here
        self._lock_fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        self._fd: int | None = None
        self._retired: list[int] = []
        self._ino = -1
        self._scanned = 0  # bytes of the current log file already folded into _last_seq
        self._last_seq = 0
        # Group commit between threads: a write records its end offset; one thread fsyncs for everyone
        # whose write ended before the fsync started (positions count bytes ever written by this object).
        self._written = 0
        self._synced = 0
        self._syncing = False
        self._sync_cond = threading.Condition()

    def close(self) -> None:
        for fd in [*self._retired, *([self._fd] if self._fd is not None else [])]:
            os.close(fd)
        self._fd, self._retired = None, []
        os.close(self._lock_fd)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _sync_log(self) -> int:
        """Under the lock: an fd on the current log, torn tail cut, and _last_seq up to date with other writers."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        ino = os.fstat(fd).st_ino
        if self._fd is not None and ino == self._ino:
            os.close(fd)
        else:  # first use, or compaction replaced the file: start over on the new one
            if self._fd is not None:
                self._retired.append(self._fd)  # another thread may be fsyncing it; closed in close()
            self._fd, self._ino, self._scanned = fd, ino, 0
        size = os.fstat(self._fd).st_size
        if size > self._scanned:
            tail = os.pread(self._fd, size - self._scanned, self._scanned)
            complete = tail.rfind(b"\n") + 1
            for number, line in enumerate(tail[:complete].split(b"\n")):
                if line:
                    try:
                        record = _loads(line)
                    except ValueError:  # a complete line, so not a torn write
                        before = os.pread(self._fd, self._scanned, 0).count(b"\n")
                        raise _damaged(self.path, before + number + 1) from None
                    self._last_seq = max(self._last_seq, int(record.get("seq", 0)))
            if complete < len(tail):  # a torn last line: drop it so the next record starts on its own line
                os.ftruncate(self._fd, self._scanned + complete)
            self._scanned += complete
        return self._fd

    def _write(self, fd: int, data: bytes) -> int:
        """Append under the lock; return the write's end position for ``_make_durable``."""
        os.write(fd, data)
        self._scanned += len(data)
        with self._sync_cond:
            self._written += len(data)
            return self._written

    def _make_durable(self, position: int) -> None:
        """Return once everything written up to ``position`` is fsync'd; called after the lock is released.

        The first thread to arrive fsyncs; threads that wrote meanwhile wait and are covered by the next
        fsync, so N concurrent appends cost about two fsyncs, not N. The current descriptor is read after the
        target: a write that went to a file since replaced by compaction was copied and fsync'd by it.
        """
        if not self.fsync:
            return
        with self._sync_cond:
            while self._synced < position:
                if self._syncing:
                    self._sync_cond.wait()
                    continue
                self._syncing = True
                target = self._written
                fd = self._fd
                self._sync_cond.release()
                try:
                    if fd is not None:
                        os.fsync(fd)
                finally:
                    self._sync_cond.acquire()
                    self._syncing = False
                    self._synced = max(self._synced, target)
                    self._sync_cond.notify_all()

    def append(self, pcs: dict[str, Any], tenant: str | None = None, endpoint: str | None = None) -> Entry:
        """Assign the next sequence number, append and fsync; the PCS is pending, for ``tenant`` at ``endpoint``.

        The number is written into the PCS as ``ft.outbox_seq`` where that changes no signature and no
        content (``numbers_pcs``).
        """
        return self.append_many([pcs], tenant, endpoint)[0]

    def append_many(
        self, items: Iterable[dict[str, Any]], tenant: str | None = None, endpoint: str | None = None
    ) -> list[Entry]:
        """Append several PCS with one fsync (group commit); each gets its own sequence number, and all of
        them the destination given."""
        return self._append([(pcs, tenant, endpoint) for pcs in items])

    def _append(self, items: list[tuple[dict[str, Any], str | None, str | None]]) -> list[Entry]:
        with self._locked():
            fd = self._sync_log()
            entries, data = [], bytearray()
            for pcs, tenant, endpoint in items:
                self._last_seq += 1
                if numbers_pcs(pcs):
                    pcs.setdefault("ft", {})["outbox_seq"] = self._last_seq
                entries.append(Entry(self._last_seq, pcs, tenant, endpoint))
                data += _dumps({"op": "put", "seq": self._last_seq, "pcs": pcs, **_destination(tenant, endpoint)})
            if not data:
                return entries
            position = self._write(fd, bytes(data))
        self._make_durable(position)  # outside the lock, so other threads append while this one syncs
        return entries

    def ack(self, seq: int) -> None:
        """Mark an entry delivered. Not fsync'd: a lost ack only means one harmless resend after a crash."""
        self.ack_many([seq])

    def ack_many(self, seqs: Iterable[int]) -> None:
        """``ack`` for several entries with one write (a batch's answers)."""
        now = time.time()
        data = b"".join(_dumps({"op": "ack", "seq": seq, "t": now}) for seq in seqs)
        if data:
            with self._locked():
                self._write(self._sync_log(), data)

    def pending(self) -> list[Entry]:
        """Entries appended and not yet acked, oldest first, each with its destination."""
        puts: dict[int, dict[str, Any]] = {}
        acked: set[int] = set()
        for rec in _read_records(self.path):
            if rec.get("op") == "put":
                puts[rec["seq"]] = rec
            elif rec.get("op") == "ack":
                acked.add(rec["seq"])
        return [
            Entry(seq, rec["pcs"], rec.get("tenant"), rec.get("endpoint"))
            for seq, rec in sorted(puts.items())
            if seq not in acked
        ]

    def status(self) -> dict[str, Any]:
        """Counts for ``flk-agent outbox status``."""
        puts = acks = 0
        for rec in _read_records(self.path):
            puts += rec.get("op") == "put"
            acks += rec.get("op") == "ack"
        pending = self.pending()
        return {
            "directory": str(self.dir),
            "pending": len(pending),
            "oldest_pending_seq": pending[0].seq if pending else None,
            "records": puts + acks,
            "log_bytes": self.path.stat().st_size if self.path.exists() else 0,
            "dead_letters": len(self.dead_letters()),
        }

    def compact(self, horizon_seconds: float = 3600.0) -> int:
        """Drop entries acked more than ``horizon_seconds`` ago; return how many were dropped.

        Holds the lock while it rewrites the log into a temporary file and renames it over the old one, so
        a concurrent appender either wrote before (its record is copied) or writes after (to the new file).
        """
        with self._locked():
            self._sync_log()
            cutoff = time.time() - horizon_seconds
            records = list(_read_records(self.path))
            old_acks = {r["seq"] for r in records if r.get("op") == "ack" and r.get("t", 0) <= cutoff}
            kept = [r for r in records if r.get("op") != "seq" and r.get("seq") not in old_acks]
            # The highest sequence number survives compaction so numbering never goes backwards.
            kept.insert(0, {"op": "seq", "seq": self._last_seq})
            _replace_durably(self.path, self.dir / (OUTBOX_FILE + ".compact"), kept)
            return len(old_acks)

    # -- dead-letter queue -------------------------------------------------------------------------------

    def dead_letters(self) -> list[DeadLetter]:
        return [_dead_letter(r) for r in _read_records(self.dlq_path)]

    def dead(self, entry: Entry, status: int | None, error: str, reason: str = "") -> bool:
        """Move an entry to the DLQ with the server's answer (fsync'd) and ack it; False if already there.

        ``reason``: a short word for ``dlq list`` and ``dlq drop --reason`` (the server's error code);
        ``http_<status>`` when not given.
        """
        pcs_id = str(entry.pcs.get("pcs_id", ""))
        with self._locked():
            known = {r.get("pcs_id") for r in _read_records(self.dlq_path)}
            added = pcs_id not in known
            if added:
                record = {
                    "seq": entry.seq,
                    "pcs_id": pcs_id,
                    "status": status,
                    "reason": reason or dead_letter_reason(status, error),
                    "error": error,
                    "failed_at": time.time(),
                    "pcs": entry.pcs,
                    **_destination(entry.tenant, entry.endpoint),
                }
                with open(self.dlq_path, "ab") as out:
                    out.write(_dumps(record))
                    out.flush()
                    os.fsync(out.fileno())
            self._write(self._sync_log(), _dumps({"op": "ack", "seq": entry.seq, "t": time.time()}))
        return added

    def retry_dead(
        self, pcs_ids: Iterable[str] | None = None, resign: Callable[[dict[str, Any]], object] | None = None
    ) -> list[Entry]:
        """Put dead letters (all, or those named) back in the outbox as new entries and remove them from the DLQ.

        Each keeps the destination it was queued for. ``resign`` (a ``PcsSigner``'s ``sign``) signs each PCS
        again before it is queued: a PCS signed with a key since retired is then sent under the current one.
        The outbox append is durable before the DLQ is rewritten, so a crash in between leaves a copy in both
        (sent twice, deduplicated by the server) rather than in neither.
        """
        wanted = None if pcs_ids is None else set(pcs_ids)
        letters = self.dead_letters()
        chosen = [d for d in letters if wanted is None or d.pcs_id in wanted]
        if not chosen:
            return []
        items = []
        for letter in chosen:
            pcs = dict(letter.pcs, ft=dict(letter.pcs.get("ft", {})))
            if resign is not None:
                resign(pcs)
            items.append((pcs, letter.tenant, letter.endpoint))
        entries = self._append(items)
        self._remove_dead({d.pcs_id for d in chosen})
        return entries

    def drop_dead(self, pcs_ids: Iterable[str] | None = None, reason: str | None = None) -> int:
        """Remove dead letters for good: those named (``pcs_ids``), those of one ``reason`` (the reason word
        or the HTTP status), or all when neither is given. Returns how many were removed."""
        wanted = None if pcs_ids is None else set(pcs_ids)
        chosen = {
            d.pcs_id
            for d in self.dead_letters()
            if (wanted is None or d.pcs_id in wanted) and (reason is None or reason in (d.reason, str(d.status)))
        }
        if chosen:
            self._remove_dead(chosen)
        return len(chosen)

    def _remove_dead(self, pcs_ids: set[str]) -> None:
        with self._locked():
            remaining = [r for r in _read_records(self.dlq_path) if r.get("pcs_id") not in pcs_ids]
            _replace_durably(self.dlq_path, self.dir / (DLQ_FILE + ".tmp"), remaining)


def _dead_letter(r: dict[str, Any]) -> DeadLetter:
    status, error = r.get("status"), r.get("error", "")
    reason = r.get("reason") or dead_letter_reason(status, error)  # letters of earlier agents have none
    return DeadLetter(r["seq"], r["pcs_id"], status, error, r.get("failed_at", 0.0), r["pcs"], reason,
                      r.get("tenant"), r.get("endpoint"))  # fmt: skip


def _dead_letter(r: dict[str, Any]) -> DeadLetter:
    status, error = r.get("status"), r.get("error", "")
    reason = r.get("reason") or dead_letter_reason(status, error)  # letters of earlier agents have none
    return DeadLetter(r["seq"], r["pcs_id"], status, error, r.get("failed_at", 0.0), r["pcs"], reason,
                      r.get("tenant"), r.get("endpoint"))  # fmt: skip


def _destination(tenant: str | None, endpoint: str | None) -> dict[str, str]:
    """The destination fields of a record (absent when not known, as in records of earlier agents)."""
    return {
        **({"tenant": tenant} if tenant is not None else {}),
        **({"endpoint": endpoint} if endpoint is not None else {}),
    }


def dead_letter_reason(status: int | None, error: str) -> str:
    """A short word for why a PCS was refused: the server's error ``code`` when its answer names one, else
    ``invalid_pcs`` for field errors (400), else ``http_<status>`` (``no_answer`` without a status)."""
    try:
        answer = json.loads(error)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        code = answer.get("code")
        if isinstance(code, str) and code:
            return code
        if status == 400:
            return "invalid_pcs"
    return f"http_{status}" if status is not None else "no_answer"


def numbers_pcs(pcs: dict[str, Any]) -> bool:
    """Whether the outbox writes its sequence number into the PCS's ``ft.outbox_seq``.

    Always under 0.1, which does not sign ``ft``. Under 0.2 ``ft`` is signed and is part of the content a
    replay must repeat, so only a PCS not yet signed and not yet numbered gets the number (its sender's
    signer signs it); a signed one, or one numbered before (a dead letter sent again), is kept as it is.
    """
    if not signs_everything(pcs):
        return True
    ft = pcs.get("ft")
    return not pcs.get("sig") and (ft is None or (isinstance(ft, dict) and not ft.get("outbox_seq")))


def _replace_durably(path: Path, tmp: Path, records: list[dict[str, Any]]) -> None:
    """Replace ``path`` with ``records`` so that a crash leaves either the old file or the new one, whole."""
    with open(tmp, "wb") as out:
        out.write(b"".join(_dumps(r) for r in records))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable: fsync the directory that holds the renamed file."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
