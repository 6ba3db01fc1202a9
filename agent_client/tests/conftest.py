"""A scripted local HTTP server for the sender's tests."""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def _verdict(body: bytes) -> dict:
    """What the verifier's 200 carries, as far as the agent checks it: the pcs_id of the PCS it judged."""
    try:
        pcs_id = json.loads(body).get("pcs_id")
    except (ValueError, AttributeError):
        pcs_id = None
    return {"pcs_id": pcs_id, "accepted": True}


class ScriptedServer:
    """A local HTTP server answering POSTs from a script of (status, headers[, body]) and recording arrival times.

    Without a body in the script, a 2xx carries the verdict of the PCS it was sent (its pcs_id), as the
    verifier's does.
    """

    def __init__(self, script: list[tuple[int, dict[str, str]]], tls: tuple[str, str] | None = None,
                 keep_alive: bool = False, gather: int = 1):  # fmt: skip
        """``gather``: each request is held (10 s at most) until that many are in flight at once; how many
        were, at the most, is ``most_in_flight``."""
        self.script = list(script)
        self.in_flight = self.most_in_flight = 0
        gathered = threading.Condition()
        self.arrivals: list[float] = []
        self.peers: list[tuple[str, int]] = []  # each request's client address: one per connection it came on
        self.targets: list[str] = []  # each request line's target: an absolute URL when sent as to a proxy
        self.received: list[tuple[dict[str, str], bytes]] = []  # each request's headers and body
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with gathered:
                    outer.in_flight += 1
                    outer.most_in_flight = max(outer.most_in_flight, outer.in_flight)
                    gathered.notify_all()
                    gathered.wait_for(lambda: outer.most_in_flight >= gather, timeout=10)
                try:
                    self._answer(body)
                finally:
                    with gathered:
                        outer.in_flight -= 1

            def _answer(self, body: bytes) -> None:
                outer.peers.append(self.client_address)
                outer.received.append((dict(self.headers.items()), body))
                outer.arrivals.append(time.monotonic())
                outer.targets.append(self.path)
                status, headers, *given = outer.script.pop(0) if outer.script else (200, {})
                payload = (
                    given[0]
                    if given
                    else json.dumps(_verdict(body) if status < 300 else {"detail": "scripted"}).encode()
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:  # (certificate file, key file)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers: list[ScriptedServer] = []

    def _make(script, **options):
        servers.append(ScriptedServer(script, **options))
        return servers[-1]

    yield _make
    for s in servers:
        s.close()
