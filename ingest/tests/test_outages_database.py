"""PostgreSQL unreachable: 503 + Retry-After with the body kept; replay stores it once the database is back."""

from __future__ import annotations

import io
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.management import call_command
from django.db import connection

from flk_site.testing import make_pcs, signed
from ingest.models import PcsRecord

HEADERS = {"Content-Type": "application/json"}


class TcpProxy:
    """A loopback TCP proxy to PostgreSQL that the test can cut (connections reset, new ones refused)."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave the socket listening.
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def db_proxy():
    db = connection.settings_dict
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    yield proxy
    proxy.cut()


def post(service, pcs) -> requests.Response:
    return requests.post(f"{service.url}/v1/pcs/submit", data=json.dumps(pcs), headers=HEADERS, timeout=30)


def test_database_outage_answers_503_and_replay_stores_every_body(gunicorn_service, db_proxy, settings, tmp_path):
    db = connection.settings_dict
    service = gunicorn_service(
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@127.0.0.1:{db_proxy.port}/{db['NAME']}",
        FLK_CONFIG_MAX_AGE_SECONDS="0",  # every request reads its tenant again: the outage hits that path too
    )
    before = [signed(make_pcs()) for _ in range(5)]
    assert [post(service, p).status_code for p in before] == [200] * 5

    db_proxy.cut()
    during = [signed(make_pcs()) for _ in range(10)]
    answers = [post(service, p) for p in during]
    assert [a.status_code for a in answers] == [503] * 10
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers)
    assert {a.json()["code"] for a in answers} == {"database_unavailable"}
    assert not PcsRecord.objects.filter(pcs_id__in=[p["pcs_id"] for p in during]).exists()

    db_proxy.restore()
    settings.PCS_SIGN_ALG, settings.PCS_HMAC_KEYS = "hmac", ["testkey"]
    out = io.StringIO()
    call_command("replay_wal", dir=tmp_path / "wal", stdout=out)
    assert "10 stored" in out.getvalue()

    stored = dict(PcsRecord.objects.values_list("pcs_id", "status_code"))
    assert all(stored[p["pcs_id"]] == 200 for p in before + during)
    assert len(stored) == 15
    # The client's retry gets the answer the first delivery would have had, marked as a replay.
    for pcs in during:
        again = post(service, pcs)
        assert again.status_code == 200
        assert again.json()["decision"] == "accept" and again.json()["dedup"] is True

    out = io.StringIO()
    call_command("replay_wal", dir=tmp_path / "wal", stdout=out)
    assert " 0 stored" in out.getvalue()
    assert PcsRecord.objects.count() == 15


def test_after_a_database_restart_the_next_submissions_succeed_on_new_connections(gunicorn_service, db_proxy):
    """Kept connections die with a restart; each is replaced when next used, and no submission sees it."""
    db = connection.settings_dict
    service = gunicorn_service(
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@127.0.0.1:{db_proxy.port}/{db['NAME']}"
    )
    # Concurrent clients, so that every worker thread keeps a connection of its own.
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda p: post(service, p).status_code, [signed(make_pcs()) for _ in range(40)])) == {200}

    db_proxy.cut()  # every kept connection is reset, as by a restart or a failover
    db_proxy.restore()
    after = [signed(make_pcs()) for _ in range(40)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: post(service, p), after))
    assert [a.status_code for a in answers] == [200] * 40
    assert PcsRecord.objects.filter(pcs_id__in=[p["pcs_id"] for p in after]).count() == 40


def test_pages_and_logins_during_an_outage_are_a_503_with_retry_after_not_a_500(gunicorn_service, db_proxy):
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import User

    # Hashed as the service hashes (the test settings use a fast hasher the service does not know).
    hasher = PBKDF2PasswordHasher()
    password = hasher.encode("correct-horse-battery-staple", hasher.salt())
    User.objects.create(username="rita", password=password, is_staff=True, is_superuser=True)
    db = connection.settings_dict
    service = gunicorn_service(
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@127.0.0.1:{db_proxy.port}/{db['NAME']}"
    )
    signed_in = requests.Session()
    form = signed_in.get(f"{service.url}/accounts/login/", timeout=30)
    assert form.status_code == 200
    login = {"username": "rita", "password": "correct-horse-battery-staple",
             "csrfmiddlewaretoken": signed_in.cookies["csrftoken"]}  # fmt: skip
    referer = {"Referer": f"{service.url}/accounts/login/"}
    logged_in = signed_in.post(f"{service.url}/accounts/login/", data=login, headers=referer, timeout=30)
    assert logged_in.history and logged_in.history[0].status_code == 302  # to the page after logging in
    assert signed_in.get(f"{service.url}/review/", timeout=30, allow_redirects=False).status_code == 200

    db_proxy.cut()
    stranger = requests.Session()
    stranger.get(f"{service.url}/accounts/login/", timeout=30)  # the form needs no database
    attempts = {
        "log in": stranger.post(f"{service.url}/accounts/login/", timeout=30, headers=referer,
                                data={**login, "csrfmiddlewaretoken": stranger.cookies["csrftoken"]}),
        "review queue": signed_in.get(f"{service.url}/review/", timeout=30, allow_redirects=False),
        "admin": signed_in.get(f"{service.url}/admin/tenancy/tenant/", timeout=30, allow_redirects=False),
    }  # fmt: skip
    for what, answer in attempts.items():
        assert answer.status_code == 503, what
        assert int(answer.headers["Retry-After"]) >= 1, what
        assert "cannot reach its database" in answer.text, what

    db_proxy.restore()
    assert signed_in.get(f"{service.url}/review/", timeout=30, allow_redirects=False).status_code == 200
