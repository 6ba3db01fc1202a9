"""The outbox WAL: durable append, acks, pending, compaction, torn lines, and a DLQ without duplicates."""

from __future__ import annotations

import json
import multiprocessing
import zlib

import pytest

from agent_client.outbox import Entry, Outbox, OutboxCorrupt


def pcs(n: int) -> dict:
    return {"pcs_id": f"{n:064x}", "ft": {"outbox_seq": 0}}


def test_appended_entries_are_pending_until_acked(tmp_path):
    with Outbox(tmp_path) as box:
        first, second, third = (box.append(pcs(i)) for i in range(3))
        box.ack(second.seq)
        assert [e.seq for e in box.pending()] == [first.seq, third.seq]


def test_outbox_seq_in_the_pcs_is_the_entry_sequence_number(tmp_path):
    with Outbox(tmp_path) as box:
        entries = [box.append(pcs(i)) for i in range(3)] + box.append_many([pcs(3), pcs(4)])
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert all(e.pcs["ft"]["outbox_seq"] == e.seq for e in entries)


def test_a_reopened_outbox_keeps_pending_entries_and_numbering(tmp_path):
    with Outbox(tmp_path) as box:
        box.append(pcs(1))
        box.ack(box.append(pcs(2)).seq)
    with Outbox(tmp_path) as box:
        assert [e.pcs["pcs_id"] for e in box.pending()] == [pcs(1)["pcs_id"]]
        assert box.append(pcs(3)).seq == 3


def test_a_torn_last_line_is_ignored_and_the_next_append_starts_cleanly(tmp_path):
    with Outbox(tmp_path) as box:
        box.append(pcs(1))
    with open(tmp_path / "outbox.log", "ab") as log:
        log.write(b'{"op":"put","seq":2,"pcs":{"pcs_id":"ab')  # a crash in the middle of a write
    with Outbox(tmp_path) as box:
        assert [e.seq for e in box.pending()] == [1]
        assert box.append(pcs(2)).seq == 2
        assert [e.seq for e in box.pending()] == [1, 2]
    for line in (tmp_path / "outbox.log").read_text().splitlines():  # each line a whole record and its CRC-32
        text, _, checksum = line.rpartition("\t")
        assert isinstance(json.loads(text), dict) and zlib.crc32(text.encode()) == int(checksum, 16)


def test_compaction_drops_old_acked_entries_and_keeps_the_rest(tmp_path):
    with Outbox(tmp_path) as box:
        entries = [box.append(pcs(i)) for i in range(10)]
        for e in entries[:8]:
            box.ack(e.seq)
        size_before = (tmp_path / "outbox.log").stat().st_size
        assert box.compact(horizon_seconds=0) == 8
        assert (tmp_path / "outbox.log").stat().st_size < size_before / 3
        assert [e.seq for e in box.pending()] == [9, 10]
        assert box.append(pcs(11)).seq == 11  # numbering never goes backwards


def test_compaction_keeps_acks_inside_the_horizon(tmp_path):
    with Outbox(tmp_path) as box:
        box.ack(box.append(pcs(1)).seq)
        assert box.compact(horizon_seconds=3600) == 0
        assert box.status()["records"] == 2


def _append_many(directory: str, count: int) -> None:
    with Outbox(directory) as box:
        for i in range(count):
            box.append(pcs(i))


def test_compaction_loses_nothing_appended_concurrently_by_another_process(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    writer = ctx.Process(target=_append_many, args=(str(tmp_path), 400))
    writer.start()
    seen: set[int] = set()
    with Outbox(tmp_path) as box:
        while writer.is_alive():
            for e in box.pending():
                seen.add(e.seq)
                box.ack(e.seq)
            box.compact(horizon_seconds=0)
        writer.join()
        seen |= {e.seq for e in box.pending()}
        assert seen == set(range(1, 401))  # every entry was seen pending once: none lost to a compaction
        assert box.append(pcs(999)).seq == 401  # and numbering has no gap or duplicate


def test_a_dead_letter_is_recorded_once_however_often_it_fails(tmp_path):
    with Outbox(tmp_path) as box:
        entry = box.append(pcs(1))
        assert box.dead(entry, 401, '{"detail":"bad signature"}') is True
        assert box.dead(Entry(entry.seq, entry.pcs), 401, "again") is False
        letters = box.dead_letters()
        assert [(d.pcs_id, d.status, d.error) for d in letters] == [
            (pcs(1)["pcs_id"], 401, '{"detail":"bad signature"}')
        ]
        assert box.pending() == []


def test_retrying_a_dead_letter_puts_it_back_in_the_outbox(tmp_path):
    with Outbox(tmp_path) as box:
        box.dead(box.append(pcs(1)), 400, "bad")
        [entry] = box.retry_dead()
        assert entry.seq == 2 and entry.pcs["ft"]["outbox_seq"] == 2
        assert [e.pcs["pcs_id"] for e in box.pending()] == [pcs(1)["pcs_id"]]
        assert box.dead_letters() == []


def test_threads_appending_together_share_fsyncs_and_lose_nothing(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with Outbox(tmp_path) as box, ThreadPoolExecutor(max_workers=8) as pool:
        entries = list(pool.map(box.append, [pcs(i) for i in range(400)]))
        assert sorted(e.seq for e in entries) == list(range(1, 401))
        assert all(e.pcs["ft"]["outbox_seq"] == e.seq for e in entries)
    with Outbox(tmp_path) as reopened:
        assert len(reopened.pending()) == 400


def test_a_damaged_record_before_the_last_line_is_refused_with_where_it_is(tmp_path):
    with Outbox(tmp_path) as box:
        box.append({"pcs_id": "a"})
        box.append({"pcs_id": "b"})
    log = tmp_path / "outbox.log"
    first, rest = log.read_bytes().split(b"\n", 1)
    log.write_bytes(first[:-5] + b"#####\n" + rest)  # the first record, not the tail, is damaged
    with Outbox(tmp_path) as box, pytest.raises(OutboxCorrupt) as refused:
        box.pending()
    assert str(refused.value).startswith(f"{log}: line 1 is not JSON or does not match its checksum")
    assert "repair or delete that line" in str(refused.value)


def test_a_record_whose_bytes_changed_but_still_parse_is_refused_as_damage(tmp_path):
    with Outbox(tmp_path) as box:
        box.append({"pcs_id": "a", "D_hat": 1.25})
        box.append({"pcs_id": "b", "D_hat": 1.5})
    log = tmp_path / "outbox.log"
    damaged = log.read_bytes().replace(b'"D_hat":1.25', b'"D_hat":1.75', 1)  # still JSON, another number
    log.write_bytes(damaged)
    with Outbox(tmp_path) as box, pytest.raises(OutboxCorrupt, match=r"outbox.log: line 1 is not JSON or does not"):
        box.pending()
    with Outbox(tmp_path) as box, pytest.raises(OutboxCorrupt, match=r"outbox.log: line 1 is not JSON or does not"):
        box.append({"pcs_id": "c"})  # an appender reading the log it appends to finds the damage too
    assert log.read_bytes() == damaged  # and writes nothing after it


def test_a_log_written_before_records_carried_checksums_is_read_and_appended_to(tmp_path):
    log = tmp_path / "outbox.log"
    log.write_text(
        '{"op":"put","seq":1,"pcs":{"pcs_id":"a","ft":{"outbox_seq":1}}}\n'
        '{"op":"put","seq":2,"pcs":{"pcs_id":"b","ft":{"outbox_seq":2}}}\n'
        '{"op":"ack","seq":1,"t":1700000000.0}\n'
    )
    with Outbox(tmp_path) as box:
        assert [(e.seq, e.pcs["pcs_id"]) for e in box.pending()] == [(2, "b")]
        assert box.append({"pcs_id": "c"}).seq == 3
        assert [e.pcs["pcs_id"] for e in box.pending()] == ["b", "c"]
