"""Hostile bodies on a real socket change nothing: chunked, trickled, cut short, malformed, too large.

One gunicorn (as operators run it) and the shipped nginx configuration in front of it serve every case; each
request is written byte for byte on a socket, as a hostile client would. Every refusal is a 4xx with a JSON
error, whether the service or the proxy refuses; afterwards no row was stored but the controls' (a valid PCS
sent chunked, trickled, and through the proxy), and a WAL replay stores nothing more. The bodies of the corpus
themselves are in ``tests/test_hostile_inputs.py``, which sends them in-process.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable

import pytest
from django.apps import apps

from flk_site.testing import make_pcs, signed
from ingest import wal
from ingest.models import PcsRecord
from ingest.replay import replay_wal
from tests.test_slow_clients_behind_the_proxy import Nginx

pytestmark = pytest.mark.slow
TENANT = "hostile"


def pcs_body(**fields) -> bytes:
    return json.dumps(signed(make_pcs(**fields))).encode()


def duplicate_key_body() -> bytes:
    """A signed PCS with a second "r" after the signed one."""
    return pcs_body().replace(b'"r": 0.87', b'"r": 0.87, "r": 0.12')


def chunked(body: bytes, size: int = 1000) -> list[bytes]:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return [b"%x\r\n" % len(p) + p + b"\r\n" for p in pieces] + [b"0\r\n\r\n"]


def head(path: str, framing: str, content_type: str = "application/json") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nX-Tenant-Id: {TENANT}\r\n"
            f"Connection: close\r\n{framing}\r\n").encode()  # fmt: skip


class Answer:
    def __init__(self, raw: bytes):
        self.raw = raw
        header, _, self.body = raw.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else 0
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

    def json(self) -> dict:
        assert self.headers.get("content-type") == "application/json", self.raw[:500]
        return json.loads(self.body)


def exchange(port: int, request: bytes, pieces: Iterable[bytes] = (), pause: float = 0.0,
             half_close: bool = False) -> Answer:  # fmt: skip
    """Write ``request`` then each of ``pieces`` (``pause`` seconds apart) and read the answer to the end; with
    ``half_close`` the client stops sending (shutdown of its side) and still reads."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        try:
            sock.sendall(request)
            for piece in pieces:
                sock.sendall(piece)
                if pause:
                    time.sleep(pause)
        except OSError:  # the server answered and closed before the client finished: read its answer
            pass
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    return Answer(data)


def assert_refused(answer: Answer, status: int | None = None, code: str | None = None) -> None:
    """A 4xx with a JSON error, or a batch's 200 whose every item is a 4xx with a JSON error."""
    assert answer.status, f"no answer: {answer.raw[:300]!r}"
    body = answer.json()
    assert answer.status != 200 or "results" in body, f"accepted: {body}"
    items = [(r["status"], r["body"]) for r in body["results"]] if answer.status == 200 else [(answer.status, body)]
    assert items and all(400 <= s < 500 and isinstance(b, dict) and b for s, b in items), (answer.status, body)
    if status is not None:
        assert answer.status == status, (answer.status, body)
    if code is not None:
        assert body.get("code") == code, body


def row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


@pytest.fixture
def service(gunicorn_service, make_tenant, tmp_path):
    make_tenant(TENANT, hmac={"env-hmac-1": "testkey"}, min_pcs_version="0.1")
    return gunicorn_service(workers=2)


def test_chunked_slow_and_cut_short_bodies_change_nothing_on_gunicorn_and_behind_the_proxy(service, tmp_path):
    proxy = Nginx(f"127.0.0.1:{service.port}")
    controls: list[str] = []
    try:
        before = row_counts()
        for name, port in (("gunicorn", service.port), ("proxy", proxy.port)):
            submit, batch = (
                head("/v1/pcs/submit", "Transfer-Encoding: chunked\r\n"),
                head("/v1/pcs/batch", "Transfer-Encoding: chunked\r\n", "application/x-ndjson"),
            )
            # Controls: a valid PCS is read whole when chunked and when trickled, so the refusals below are for
            # what the bodies hold.
            valid = signed(make_pcs())
            assert exchange(port, submit, chunked(json.dumps(valid).encode(), 100)).status == 200, name
            trickled = signed(make_pcs())
            body = json.dumps(trickled).encode()
            slow = exchange(port, head("/v1/pcs/submit", f"Content-Length: {len(body)}\r\n"),
                            [body[i : i + 40] for i in range(0, len(body), 40)], pause=0.05)  # fmt: skip
            assert slow.status == 200, (name, slow.raw[:300])
            controls += [valid["pcs_id"], trickled["pcs_id"]]

            # Chunked hostile bodies: the service reads them whole and refuses them as it would any body.
            assert_refused(exchange(port, submit, chunked(duplicate_key_body())), 400)
            assert_refused(exchange(port, submit, chunked(b"[" * 30_000 + b"]" * 30_000, 8192)), 400)
            assert_refused(exchange(port, batch, chunked(duplicate_key_body() + b"\n" + b"{\xff}\n")), 200)
            big = b"[" + b" " * (10 * 1024 * 1024) + b"]"  # the proxy refuses it at 256 KiB, the service at 64 KiB
            assert_refused(exchange(port, submit, chunked(big, 65536)), 413, "body_too_large")
            assert_refused(exchange(port, head("/v1/pcs/submit", f"Content-Length: {len(big)}\r\n"), [big]), 413,
                           "body_too_large")  # fmt: skip
            # A malformed chunk: refused by the service (gunicorn) or the proxy, in JSON either way.
            assert_refused(exchange(port, submit, [b"zz\r\nabc\r\n0\r\n\r\n"]), 400)

            # A slow hostile body, trickled byte by byte in pieces: refused once complete.
            hostile = duplicate_key_body()
            trickle = exchange(port, head("/v1/pcs/submit", f"Content-Length: {len(hostile)}\r\n"),
                               [hostile[i : i + 25] for i in range(0, len(hostile), 25)], pause=0.02)  # fmt: skip
            assert_refused(trickle, 400)

            # Cut short: a whole signed PCS, but fewer bytes than its Content-Length, then the client stops.
            short = pcs_body()
            cut = exchange(port, head("/v1/pcs/submit", f"Content-Length: {len(short) + 50}\r\n"), [short],
                           half_close=True)  # fmt: skip
            if name == "gunicorn":
                assert_refused(cut, 400, "incomplete_body")
            else:  # nginx never forwards an incomplete body: it closes the connection
                assert cut.status in (0, 400), cut.raw[:300]
            # ... or abandons the connection mid-body.
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(head("/v1/pcs/batch", "Content-Length: 5000\r\n") + b"[" + pcs_body()[:200])
        # Request smuggling shapes never reach the service's verdict.
        both = head("/v1/pcs/submit", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")
        assert exchange(proxy.port, both, chunked(pcs_body())).json()["code"] == "bad_request"
        assert exchange(service.port, both, chunked(pcs_body())).status == 400  # gunicorn's own page
    finally:
        proxy.stop()
        service.stop()

    stored = sorted(PcsRecord.objects.values_list("pcs_id", flat=True))
    assert stored == sorted(controls)
    # The controls' records, and the review items of those drawn for the audit sample, are the only new rows.
    review_items = apps.get_model("review", "ReviewItem").objects
    assert set(review_items.values_list("record__pcs_id", flat=True)) <= set(controls)
    followers = {"ingest.PcsRecord", "review.ReviewItem"}
    assert {k: v for k, v in row_counts().items() if k not in followers} == {
        k: v for k, v in before.items() if k not in followers
    }
    wal.close_writers()
    report = replay_wal(tmp_path / "wal")
    assert report.seen >= len(controls) and report.stored == 0, report.as_dict()
    assert sorted(PcsRecord.objects.values_list("pcs_id", flat=True)) == sorted(controls)
