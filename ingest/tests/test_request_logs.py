"""Request logs: one JSON line per submission with pcs_id, tenant, status and latency; never a body."""

from __future__ import annotations

import json
import logging

import requests

from flk_site.testing import make_pcs, signed
from ingest.logging_redaction import RedactPersonalData, redact


def test_a_submission_logs_one_line_with_its_identifiers(submit, unsigned_default_tenant, caplog):
    pcs = make_pcs()
    with caplog.at_level(logging.INFO, logger="flk.request"):
        submit(pcs)
    [line] = [r for r in caplog.records if r.name == "flk.request"]
    assert (line.pcs_id, line.tenant, line.status, line.endpoint) == (pcs["pcs_id"], "default", 200, "pcs-submit")
    assert line.latency_ms > 0


def test_emails_and_phone_numbers_are_redacted_from_free_text():
    text = "reviewer jane.doe@example.org called +1 415-555-0100 and (030) 1234 5678 about it"
    assert redact(text) == "reviewer [email] called [phone] and [phone] about it"


def test_dates_decimals_and_plain_counters_are_not_taken_for_phone_numbers():
    text = "on 2026-11-24 D_hat 0.857365188 differs by 12345678 from v1.2.3"
    assert redact(text) == text


def test_identifiers_and_numbers_we_log_on_purpose_are_kept():
    pcs_id = make_pcs()["pcs_id"]
    record = logging.makeLogRecord(
        {"msg": "stored %s for %s", "args": (pcs_id, "acme"), "pcs_id": pcs_id, "latency_ms": 12.5,
         "detail": "contact ops@example.com", "count": "1234567"}
    )  # fmt: skip
    RedactPersonalData().filter(record)
    assert record.getMessage() == f"stored {pcs_id} for acme"
    assert record.pcs_id == pcs_id
    assert record.detail == "contact [email]"
    assert record.count == "1234567"


def test_logs_under_gunicorn_are_json_and_never_carry_the_body(gunicorn_service):
    service = gunicorn_service(workers=1)
    pcs = signed(make_pcs())
    requests.post(f"{service.url}/v1/pcs/submit", data=json.dumps(pcs),
                  headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
    forged = signed(make_pcs(), key=b"not-the-key")
    requests.post(f"{service.url}/v1/pcs/submit", data=json.dumps(forged),
                  headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
    service.stop()
    text = service.log_path.read_text()
    for secret_part in (pcs["merkle_root"], pcs["sig"], forged["sig"], forged["merkle_root"], "testkey"):
        assert secret_part not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    submissions = [line for line in lines if line.get("event") == "request" and line["endpoint"] == "pcs-submit"]
    assert [(s["pcs_id"], s["status"]) for s in submissions] == [(pcs["pcs_id"], 200), (forged["pcs_id"], 401)]
    assert all(s["tenant"] == "default" and s["latency_ms"] > 0 for s in submissions)
    assert sum(1 for line in lines if line.get("event") == "http_access") >= 2
