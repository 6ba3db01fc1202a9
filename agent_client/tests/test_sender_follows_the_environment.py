"""The sender goes through the proxy the environment names, and straight to hosts NO_PROXY exempts."""

from __future__ import annotations

import pytest

from agent_client.outbox import Outbox
from agent_client.sender import DEAD, DELIVERED, Sender
from flk_site.testing import make_pcs


@pytest.fixture
def recorder(scripted):
    """A local server answering 200 to every POST (``scripted`` in conftest.py), recording request targets."""
    return scripted([])


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_posts_go_through_the_proxy_the_environment_names(recorder, monkeypatch, tmp_path):
    monkeypatch.setenv("HTTP_PROXY", recorder.url)  # the recorder plays the proxy
    with Outbox(tmp_path / "outbox") as outbox:
        result = Sender("http://verifier.example.invalid:8000", outbox, max_attempts=1).submit(make_pcs())
    assert result.outcome == DELIVERED
    assert recorder.targets == ["http://verifier.example.invalid:8000/v1/pcs/submit"]


def test_a_host_no_proxy_exempts_is_reached_directly(recorder, monkeypatch, tmp_path):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with Outbox(tmp_path / "outbox") as outbox:
        result = Sender(recorder.url, outbox, max_attempts=1).submit(make_pcs())
    assert result.outcome == DELIVERED
    assert recorder.targets == ["/v1/pcs/submit"]


def test_without_no_proxy_the_dead_proxy_is_used_and_the_pcs_waits_in_the_dlq(recorder, monkeypatch, tmp_path):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    with Outbox(tmp_path / "outbox") as outbox:
        result = Sender(recorder.url, outbox, max_attempts=1).submit(make_pcs())
    assert result.outcome == DEAD and recorder.targets == []
