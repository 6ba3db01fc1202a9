"""Many pending PCS go as batches, each settled by its own answer; a service without batches gets singles."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agent_client.outbox import Outbox
from agent_client.sender import DEAD, DELIVERED, Sender
from flk_site.testing import FLK_AGENT, make_pcs, pcs_files
from ingest import wal
from ingest.models import PcsRecord


def answer(results: list[dict]) -> tuple[int, dict, bytes]:
    return 200, {}, json.dumps({"results": results}).encode()


def test_each_pcs_of_a_batch_is_settled_by_its_own_answer(scripted, tmp_path):
    pcs = [make_pcs() for _ in range(3)]
    ids = [p["pcs_id"] for p in pcs]
    server = scripted([
        answer([{"status": 200, "body": {"pcs_id": ids[0], "decision": "accept"}},
                {"status": 503, "body": {"code": "database_unavailable"}, "retry_after": 0},
                {"status": 401, "body": {"detail": "bad signature", "code": "signature_invalid"}}]),
        answer([{"status": 202, "body": {"pcs_id": ids[1], "decision": "escalate"}}]),
    ])  # fmt: skip
    with Outbox(tmp_path) as box:
        sender = Sender(server.url, box, base_delay=0.01)
        summary = sender.send_many(box.append_many(pcs, "acme", server.url), concurrency=1)
        assert [r.outcome for r in summary.results] == [DELIVERED, DELIVERED, DEAD]
        assert (summary.accepted, summary.escalated, summary.dead) == (1, 1, 1)
        [letter] = box.dead_letters()
        assert (letter.pcs_id, letter.reason, letter.tenant) == (ids[2], "signature_invalid", "acme")
        assert box.pending() == []
    assert server.targets == ["/v1/pcs/batch", "/v1/pcs/batch"]
    first, second = (json.loads(body) for _, body in server.received)
    assert [p["pcs_id"] for p in first] == ids and [p["pcs_id"] for p in second] == [ids[1]]  # only the 503 again
    assert all(headers["X-Tenant-Id"] == "acme" for headers, _ in server.received)


def test_a_service_without_the_batch_endpoint_gets_single_submissions(scripted, tmp_path):
    server = scripted([(404, {}, b'{"detail": "not found", "code": "not_found"}')])
    with Outbox(tmp_path) as box:
        sender = Sender(server.url, box)
        summary = sender.send_many(box.append_many([make_pcs() for _ in range(4)]), concurrency=1)
        assert summary.delivered == 4 and box.dead_letters() == []
        sender.send_many(box.append_many([make_pcs() for _ in range(2)]), concurrency=1)
    assert server.targets == ["/v1/pcs/batch"] + ["/v1/pcs/submit"] * 6  # remembered: no second batch tried


def test_a_batch_the_service_finds_too_large_is_split(scripted, tmp_path):
    server = scripted([(413, {}, b'{"code": "batch_too_large"}')])
    pcs = [make_pcs() for _ in range(4)]
    ids = [p["pcs_id"] for p in pcs]
    server.script += [answer([{"status": 200, "body": {"pcs_id": i}} for i in ids[:2]]),
                      answer([{"status": 200, "body": {"pcs_id": i}} for i in ids[2:]])]  # fmt: skip
    with Outbox(tmp_path) as box:
        summary = Sender(server.url, box).send_many(box.append_many(pcs), concurrency=1)
    assert summary.delivered == 4
    assert [len(json.loads(body)) for _, body in server.received] == [4, 2, 2]


@pytest.mark.slow
def test_submit_of_many_files_sends_batches_through_the_real_service(gunicorn_service, tmp_path):
    service = gunicorn_service()
    files = pcs_files(tmp_path / "pcs", 40, "batched")
    outbox = tmp_path / "outbox"
    done = subprocess.run([FLK_AGENT, "submit", "--endpoint", service.url, "--outbox", str(outbox),
                           "--concurrency", "2", *files], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "delivered 40, dead letters 0, pending 0; accepted 40" in done.stderr
    sent = [json.loads(Path(path).read_text())["pcs_id"] for path in files]
    assert PcsRecord.objects.filter(pcs_id__in=sent).count() == 40
    # Two batches of 20: two WAL records on the service's side, one per request.
    wal_dir = tmp_path / "wal"
    assert sum(path.read_bytes().count(wal.MAGIC) for path in wal.segments(wal_dir)) == 2
    assert len(list(wal.iter_records(wal_dir))) == 40
