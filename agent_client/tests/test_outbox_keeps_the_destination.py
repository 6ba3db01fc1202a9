"""Each queued PCS keeps its tenant and endpoint: a drain or a retry sends it there, never to another tenant.

The agent is stopped with SIGTERM while the service is down, the service starts elsewhere, and a drain
without --tenant delivers every PCS to the tenant it was queued for; a --tenant naming another is refused.
Dead letters keep their tenant too, and ``dlq retry --resign`` signs them with the current key.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from agent_client.outbox import Outbox
from flk_site.testing import FLK_AGENT, free_port, make_pcs, outbox_status, pcs_files, signed
from ingest.models import PcsRecord
from tenancy.models import SigningKey, Tenant

pytestmark = pytest.mark.slow


def agent(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([FLK_AGENT, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})  # fmt: skip


@pytest.fixture
def acme(transactional_db):
    tenant = Tenant.objects.create(name="acme", sign_alg="hmac", min_pcs_version="0.2")
    SigningKey.objects.create(tenant=tenant, key_id="k1", algorithm="hmac", secret="testkey")
    return tenant


def test_a_drain_after_sigterm_delivers_to_the_tenant_the_pcs_was_queued_for(gunicorn_service, acme, tmp_path):
    outbox = tmp_path / "outbox"
    files = pcs_files(tmp_path / "pcs", 6, "kept")
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    submit = subprocess.Popen([FLK_AGENT, "submit", "--tenant", "acme", "--endpoint", down, "--outbox", str(outbox),
                               *files], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while outbox_status(outbox)["pending"] < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # a few refused connections: transient, retried
    submit.send_signal(signal.SIGTERM)
    _, err = submit.communicate(timeout=30)
    assert submit.returncode == 130, err
    status = outbox_status(outbox)
    assert status["pending"] == 6 and status["dead_letters"] == 0

    service = gunicorn_service()
    refused = agent("outbox", "drain", "--tenant", "default", "--endpoint", service.url, "--outbox", str(outbox))
    assert refused.returncode == 2
    assert "6 PCS were queued for tenant 'acme', not 'default'; nothing was sent" in refused.stderr
    assert PcsRecord.objects.count() == 0

    drained = agent("outbox", "drain", "--endpoint", service.url, "--outbox", str(outbox), "--json")
    assert drained.returncode == 0, drained.stderr
    assert "delivered 6, dead letters 0, pending 0; accepted 6, escalated 0, rejected 0, duplicates 0" in drained.stderr
    lines = [json.loads(line) for line in drained.stdout.splitlines()]
    assert [(line["decision"], line["status"], line["tenant"]) for line in lines] == [("accept", 200, "acme")] * 6
    assert PcsRecord.objects.filter(tenant__name="acme").count() == 6
    assert PcsRecord.objects.filter(tenant__name="default").count() == 0


def test_dead_letters_keep_their_tenant_and_are_signed_again_with_resign(gunicorn_service, acme, tmp_path):
    service = gunicorn_service()
    outbox = tmp_path / "outbox"
    retired = signed(make_pcs(), key=b"retired-key")  # signed with a key the tenant no longer holds
    path = tmp_path / "retired.json"
    path.write_text(json.dumps(retired))
    first = agent("submit", "--tenant", "acme", "--endpoint", service.url, "--outbox", str(outbox), str(path))
    assert first.returncode == 1 and "dead letters 1" in first.stderr
    [letter] = [json.loads(line) for line in agent("dlq", "list", "--outbox", str(outbox)).stdout.splitlines()]
    assert (letter["reason"], letter["status"], letter["tenant"]) == ("signature_invalid", 401, "acme")

    elsewhere = agent("dlq", "retry", "--tenant", "default", "--outbox", str(outbox))
    assert elsewhere.returncode == 2 and "queued for tenant 'acme'" in elsewhere.stderr
    again = agent("dlq", "retry", "--outbox", str(outbox))  # no key at hand: sent as signed, refused again
    assert again.returncode == 1 and "dead letters 1" in again.stderr

    resigned = agent("dlq", "retry", "--resign", "--outbox", str(outbox), env={"PCS_HMAC_KEY": "testkey"})
    assert resigned.returncode == 0, resigned.stderr
    assert "delivered 1, dead letters 0" in resigned.stderr
    assert PcsRecord.objects.get(pcs_id=retired["pcs_id"]).tenant.name == "acme"
    with Outbox(outbox) as box:
        assert box.dead_letters() == [] and box.pending() == []


def test_dlq_drop_removes_letters_by_id_by_reason_or_all_and_counts_them(gunicorn_service, acme, tmp_path):
    service = gunicorn_service()
    outbox = tmp_path / "outbox"
    bad_key = [signed(make_pcs(), key=b"wrong") for _ in range(3)]
    stored = signed(make_pcs())
    conflict = signed(dict(stored, coh_star=0.75, budget=0.289))
    paths = []
    for k, pcs in enumerate([*bad_key, stored]):
        paths.append(tmp_path / f"{k}.json")
        paths[-1].write_text(json.dumps(pcs))
    agent("submit", "--endpoint", service.url, "--outbox", str(outbox), *map(str, paths))
    (tmp_path / "conflict.json").write_text(json.dumps(conflict))
    agent("submit", "--endpoint", service.url, "--outbox", str(outbox), str(tmp_path / "conflict.json"))
    listed = [json.loads(line) for line in agent("dlq", "list", "--outbox", str(outbox)).stdout.splitlines()]
    assert sorted(line["reason"] for line in listed) == ["pcs_id_conflict"] + ["signature_invalid"] * 3

    assert agent("dlq", "drop", "--outbox", str(outbox)).returncode == 2  # nothing named: nothing dropped
    one = agent("dlq", "drop", bad_key[0]["pcs_id"], "--outbox", str(outbox))
    assert one.returncode == 0 and "dropped 1 dead letter\n" in one.stderr
    by_reason = agent("dlq", "drop", "--reason", "signature_invalid", "--outbox", str(outbox))
    assert "dropped 2 dead letters" in by_reason.stderr
    by_status = agent("dlq", "drop", "--reason", "409", "--outbox", str(outbox))
    assert "dropped 1 dead letter\n" in by_status.stderr
    assert agent("dlq", "list", "--outbox", str(outbox)).stdout == ""
    assert "dropped 0 dead letters" in agent("dlq", "drop", "--all", "--outbox", str(outbox)).stderr
