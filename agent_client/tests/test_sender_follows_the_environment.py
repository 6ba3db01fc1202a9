"""The sender goes through the proxy the environment names, and straight to hosts NO_PROXY exempts."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent_client.outbox import Outbox
from agent_client.sender import DEAD, DELIVERED, Sender
from flk_site.testing import make_pcs


class Recorder:
    """A local HTTP server that answers every POST with 200 and records each request line's target."""

    def __init__(self):
        self.targets: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.targets.append(self.path)  # an absolute URL when the request came as to a proxy
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "18")
                self.end_headers()
                self.wfile.write(b'{"accepted": true}')

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recorder():
    server = Recorder()
    yield server
    server.close()


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
