"""The sender honours Retry-After on 503 and 429, backs off on other failures, and leaves the PCS pending when out of time."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import threading
import time

import pytest

from agent_client.outbox import Outbox
from agent_client.sender import DEAD, DELIVERED, PENDING, Sender, backoff_delay, retry_after_seconds
from flk_site.testing import FLK_AGENT, outbox_status, pcs_files


def pcs() -> dict:
    return {"pcs_id": "ab" * 32, "ft": {}}


def test_503_with_retry_after_waits_that_long_then_delivers(scripted, tmp_path):
    server = scripted([(503, {"Retry-After": "1"})])
    with Outbox(tmp_path) as box:
        result = Sender(server.url, box, base_delay=0.01).submit(pcs())
        assert (result.outcome, result.status, result.attempts) == (DELIVERED, 200, 2)
        assert box.pending() == []
    assert server.arrivals[1] - server.arrivals[0] >= 0.95


def test_429_with_retry_after_is_honoured_rather_than_the_short_backoff(scripted, tmp_path):
    server = scripted([(429, {"Retry-After": "1"}), (429, {"Retry-After": "1"})])
    with Outbox(tmp_path) as box:
        result = Sender(server.url, box, base_delay=0.001, max_delay=0.01).submit(pcs())
    assert result.outcome == DELIVERED and result.attempts == 3
    gaps = [b - a for a, b in zip(server.arrivals, server.arrivals[1:], strict=False)]
    assert min(gaps) >= 0.95


def test_5xx_is_retried_until_the_attempt_budget_is_spent_then_left_pending(scripted, tmp_path):
    server = scripted([(500, {})] * 10)
    with Outbox(tmp_path) as box:
        result = Sender(server.url, box, max_attempts=3, base_delay=0.01).submit(pcs())
        assert (result.outcome, result.status, result.attempts) == (PENDING, 500, 3)
        assert len(server.arrivals) == 3
        assert box.dead_letters() == []  # a 5xx is transient: never a dead letter
        assert [e.pcs["pcs_id"] for e in box.pending()] == [result.pcs_id]


def test_a_refused_pcs_is_not_retried(scripted, tmp_path):
    server = scripted([(400, {})])
    with Outbox(tmp_path) as box:
        result = Sender(server.url, box).submit(pcs())
        assert (result.outcome, result.status, result.attempts) == (DEAD, 400, 1)
        assert box.dead_letters()[0].error == '{"detail": "scripted"}'


def test_network_errors_are_retried_and_leave_the_pcs_pending(tmp_path):
    with Outbox(tmp_path) as box:
        result = Sender("http://127.0.0.1:9", box, max_attempts=2, base_delay=0.01).submit(pcs())
        assert result.outcome == PENDING and result.status is None and result.attempts == 2
        assert "ConnectionError" in result.body
        assert box.dead_letters() == [] and len(box.pending()) == 1


def test_backoff_is_full_jitter_under_an_exponential_cap():
    rng = random.Random(1)
    waits = [backoff_delay(5, base=0.5, cap=4.0, rng=rng) for _ in range(2000)]
    assert 0.0 <= min(waits) < 0.2 and 3.8 < max(waits) <= 4.0  # uniform over [0, min(4, 0.5*16)]
    assert max(backoff_delay(2, base=0.5, cap=4.0, rng=rng) for _ in range(2000)) <= 1.0


def test_retry_after_accepts_seconds_and_http_dates():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
    assert retry_after_seconds("soon") is None


def test_a_redirect_is_not_followed_and_the_pcs_waits_in_the_dlq_with_its_target(scripted, tmp_path):
    server = scripted([(308, {"Location": "https://verifier.example/v1/pcs/submit"})])
    with Outbox(tmp_path) as box:
        result = Sender(server.url, box).submit(pcs())
        assert (result.outcome, result.status, result.attempts) == (DEAD, 308, 1)
        assert len(server.arrivals) == 1
        [letter] = box.dead_letters()
        assert letter.error == (
            "the endpoint redirects to https://verifier.example/v1/pcs/submit: give that URL as the endpoint"
        )


def test_a_200_that_is_not_the_verdict_of_this_pcs_goes_to_the_dlq_instead_of_being_acked(scripted, tmp_path):
    login_page = b"<html><body>Sign in to continue</body></html>"
    other_verdict = json.dumps({"pcs_id": "cd" * 32, "accepted": True}).encode()
    server = scripted([(200, {}, login_page), (202, {}, other_verdict)])
    with Outbox(tmp_path) as box:
        sender = Sender(server.url, box)
        results = [sender.submit(pcs()), sender.submit({"pcs_id": "ef" * 32, "ft": {}})]
        assert [(r.outcome, r.status, r.attempts) for r in results] == [(DEAD, 200, 1), (DEAD, 202, 1)]
        letters = box.dead_letters()
        assert [letter.pcs_id for letter in letters] == ["ab" * 32, "ef" * 32]
        assert all("without this PCS's verdict: is it the verifier" in letter.error for letter in letters)
        assert box.pending() == []


def test_no_attempt_at_all_or_no_sender_thread_is_refused(tmp_path):
    with Outbox(tmp_path) as box:
        with pytest.raises(ValueError, match="max_attempts must be at least 1, got 0"):
            Sender("http://127.0.0.1:9", box, max_attempts=0)
        with pytest.raises(ValueError, match="concurrency must be at least 1, got 0"):
            Sender("http://127.0.0.1:9", box).drain(concurrency=0)


def test_a_stopped_sender_ends_its_wait_and_leaves_the_entry_pending_not_dead(scripted, tmp_path):
    server = scripted([(503, {"Retry-After": "600"})])
    with Outbox(tmp_path) as box:
        sender = Sender(server.url, box)
        results = []
        sending = threading.Thread(target=lambda: results.append(sender.submit(pcs())))
        sending.start()
        while not server.arrivals:  # the first try has been answered: the sender now waits 600 s
            time.sleep(0.01)
        sender.stop()
        sending.join(timeout=30)
        assert not sending.is_alive()
        [result] = results
        assert (result.outcome, result.status, result.attempts) == (PENDING, 503, 1)
        assert [entry.pcs["pcs_id"] for entry in box.pending()] == [pcs()["pcs_id"]]
        assert box.dead_letters() == []
        assert sender.send(box.pending()[0]).outcome == PENDING  # stopped for good: no further try
    assert len(server.arrivals) == 1


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_sigterm_stops_a_retrying_submit_with_every_pcs_pending_and_none_dead(tmp_path, concurrency):
    files = pcs_files(tmp_path, 12, "stop")
    with socket.socket() as closed:  # a port nothing listens on: every try fails and is retried
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    outbox = tmp_path / "outbox"
    agent = subprocess.Popen([FLK_AGENT, "submit", "--concurrency", concurrency, "--endpoint", endpoint,
                              "--outbox", str(outbox), *files], stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        seen = ""
        while "retrying" not in seen:  # the agent has met the closed port and waits to try again
            chunk = agent.stderr.read(200)
            assert chunk, f"the agent ended before it retried: {seen}"
            seen += chunk
        agent.send_signal(signal.SIGTERM)
        err = agent.communicate(timeout=30)[1]
    finally:
        agent.kill()
    assert agent.returncode == 130 and "interrupted; pending PCS stay in the outbox" in err
    status = outbox_status(outbox)
    assert (status["pending"], status["dead_letters"]) == (12, 0)
