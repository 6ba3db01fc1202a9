"""Slow clients cannot starve the service: the shipped proxy configuration (deploy/nginx), run in Debian's
nginx in front of gunicorn, keeps /healthz fast while four clients trickle headers and bodies, the number that
freezes a four-worker gunicorn reached directly."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from flk_site.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "flk.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WORKERS = 4

pytestmark = pytest.mark.slow


class Nginx:
    """deploy/nginx/flk.conf.template rendered as the nginx image renders it, in an nginx of the test's own."""

    def __init__(self, upstream: str):
        assert os.path.exists(NGINX), "nginx is missing: `make proxy` (make test runs it) installs Debian's nginx"
        self.root = Path(tempfile.mkdtemp(prefix="flk-test-nginx-"))
        # mkdtemp makes it 0700: nginx's workers (an unprivileged user when the tests run as root) could not reach
        # the body directory below, and a body past client_body_buffer_size, which nginx writes there, got a 500.
        self.root.chmod(0o755)
        self.port = free_port()
        rendered = TEMPLATE.read_text()
        for name, value in {"FLK_WEB_UPSTREAM": upstream, "FLK_CONSOLE_UPSTREAM": upstream,
                            "FLK_PROXY_PORT": f"127.0.0.1:{self.port}", "FLK_FORWARDED_PROTO": "$scheme"}.items():  # fmt: skip
            rendered = rendered.replace("${" + name + "}", value)
        (self.root / "flk.conf").write_text(rendered)
        for temp in ("body", "proxy"):
            (self.root / temp).mkdir()
            (self.root / temp).chmod(0o777)  # nginx's workers run as an unprivileged user
        (self.root / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {self.root}/nginx.pid;\nerror_log {self.root}/error.log;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {self.root}/body;\n"
            f"  proxy_temp_path {self.root}/proxy;\n  include {self.root}/flk.conf;\n}}\n"
        )
        check = subprocess.run([NGINX, "-t", "-q", "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
                               capture_output=True, text=True)  # fmt: skip
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen([NGINX, "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
                                        stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


class SlowClients:
    """Clients that send one header line, or one body byte, every second, and never finish."""

    def __init__(self, port: int, count: int):
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._trickle, args=(port, n % 2 == 0), daemon=True)
                        for n in range(count)]  # fmt: skip
        for thread in self.threads:
            thread.start()
        time.sleep(1.5)  # every one of them connected and started its request

    def _trickle(self, port: int, headers: bool) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"POST /v1/pcs/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
            if not headers:
                sock.sendall(b"Content-Length: 4000\r\n\r\n{")
            while not self.stop_event.wait(1.0):
                try:
                    sock.sendall(b"X-Slow: 1\r\n" if headers else b" ")
                except OSError:
                    return  # the server gave up on us: that is what should happen

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=5)


def _healthz_seconds(url: str, timeout: float) -> float:
    started = time.monotonic()
    assert requests.get(f"{url}/healthz", timeout=timeout).status_code == 200
    return time.monotonic() - started


def test_four_slow_clients_do_not_delay_healthz_through_the_proxy(gunicorn_service):
    service = gunicorn_service(workers=WORKERS)
    proxy = Nginx(f"127.0.0.1:{service.port}")
    try:
        # Reached directly, gunicorn's four workers are each held by a slow client: /healthz waits.
        direct = SlowClients(service.port, WORKERS)
        try:
            with pytest.raises(requests.Timeout):
                requests.get(f"{service.url}/healthz", timeout=3)
        finally:
            direct.stop()
        service.kill(9)  # the held workers would stay held until gunicorn's timeout
        service = gunicorn_service(workers=WORKERS)
        proxy.stop()
        proxy = Nginx(f"127.0.0.1:{service.port}")

        # Through the proxy the same four clients reach nginx only; every /healthz answers at once.
        slow = SlowClients(proxy.port, WORKERS)
        try:
            took = [_healthz_seconds(proxy.url, timeout=5) for _ in range(10)]
        finally:
            slow.stop()
        assert max(took) < 1.0, took
        # A complete request still goes through, to the API and to the console pages.
        assert requests.post(f"{proxy.url}/v1/pcs/submit", data=b"{}", timeout=5,
                             headers={"Content-Type": "application/json"}).status_code == 400  # fmt: skip
        assert requests.get(f"{proxy.url}/accounts/login/", timeout=5).status_code == 200
        assert requests.get(f"{proxy.url}/metrics", timeout=5).status_code == 404
    finally:
        proxy.stop()
