"""What each POST carries (tenant, body, credentials from ~/.netrc) and the proxy the environment names."""

from __future__ import annotations

import base64
import json
import subprocess
import threading

import pytest

from agent_client.outbox import Outbox
from agent_client.sender import DELIVERED, PENDING, Sender
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


def test_without_no_proxy_the_dead_proxy_is_used_and_the_pcs_waits_in_the_outbox(recorder, monkeypatch, tmp_path):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    with Outbox(tmp_path / "outbox") as outbox:
        result = Sender(recorder.url, outbox, max_attempts=1).submit(make_pcs())
        assert len(outbox.pending()) == 1 and outbox.dead_letters() == []
    assert result.outcome == PENDING and recorder.targets == []


def test_each_post_carries_the_tenant_and_its_own_body_and_attempt(scripted, tmp_path):
    server = scripted([(503, {"Retry-After": "0"})])  # the first PCS is tried twice, on the same thread
    first, second = make_pcs(), make_pcs()
    with Outbox(tmp_path / "outbox") as outbox:
        sender = Sender(server.url, outbox, tenant="acme", sleep=lambda _s: None)
        assert [sender.submit(p).outcome for p in (first, second)] == [DELIVERED, DELIVERED]
    sent = [(headers, json.loads(body)) for headers, body in server.received]
    assert [(pcs["pcs_id"], pcs["attempt"]) for _, pcs in sent] == [
        (first["pcs_id"], 1),
        (first["pcs_id"], 2),
        (second["pcs_id"], 1),
    ]
    for (headers, _), (_, body) in zip(sent, server.received, strict=True):
        assert headers["X-Tenant-Id"] == "acme" and headers["Content-Type"] == "application/json"
        assert int(headers["Content-Length"]) == len(body)
        assert "Authorization" not in headers


def test_credentials_for_the_host_in_netrc_are_sent(recorder, monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login agent password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with Outbox(tmp_path / "outbox") as outbox:
        assert Sender(recorder.url, outbox).submit(make_pcs()).outcome == DELIVERED
    ((headers, _),) = recorder.received
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"agent:s3cret").decode()


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 and its key: (certificate file, key file)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


def test_an_https_endpoint_is_trusted_only_through_the_bundle_the_environment_names(
    scripted, certificate, monkeypatch, tmp_path
):
    server = scripted([], tls=certificate)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with Outbox(tmp_path / "untrusted") as outbox:
        result = Sender(server.url, outbox, max_attempts=1).submit(make_pcs(merkle_root="d" * 64))
        assert result.outcome == PENDING and result.status is None
        assert result.body.startswith("SSLError: ") and outbox.dead_letters() == []
    assert server.received == []  # nothing crossed an unverified connection
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
    with Outbox(tmp_path / "trusted") as outbox:
        result = Sender(server.url, outbox, max_attempts=1).submit(make_pcs(merkle_root="d" * 64))
    assert result.outcome == DELIVERED and result.status == 200
    assert len(server.received) == 1


def test_a_server_that_keeps_connections_open_gets_every_post_on_one(scripted, tmp_path):
    server = scripted([], keep_alive=True)
    with Outbox(tmp_path / "outbox") as outbox:
        sender = Sender(server.url, outbox)
        results = [sender.submit(make_pcs(merkle_root=f"{k:064x}")) for k in range(5)]
    assert [r.outcome for r in results] == [DELIVERED] * 5
    assert len(server.peers) == 5 and len(set(server.peers)) == 1


def test_a_server_that_answers_too_slowly_is_a_read_timeout(scripted, tmp_path):
    server = scripted([])
    release = threading.Event()
    handler = server.httpd.RequestHandlerClass
    answer = handler.do_POST

    def slow(self):
        release.wait(5)
        answer(self)

    handler.do_POST = slow
    with Outbox(tmp_path / "outbox") as outbox:
        result = Sender(server.url, outbox, max_attempts=1, timeout=0.3).submit(make_pcs(merkle_root="e" * 64))
        assert result.outcome == PENDING and result.status is None
        assert result.body.startswith("ReadTimeout: ") and len(outbox.pending()) == 1
    release.set()


def test_a_proxy_url_that_cannot_be_used_leaves_the_pcs_pending_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("HTTP_PROXY", "http://")  # no host
    with Outbox(tmp_path / "outbox") as outbox:
        result = Sender("http://127.0.0.1:9", outbox).submit(make_pcs(merkle_root="f" * 64))
        assert result.outcome == PENDING and result.status is None and result.attempts == 1  # not retried
        assert len(outbox.pending()) == 1 and outbox.dead_letters() == []
    error = result.body
    assert error.startswith("not sent, fix the configuration: InvalidProxyURL: ") and "proxy URL" in error
