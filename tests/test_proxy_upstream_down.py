"""The shipped proxy answers 503 with Retry-After, never a bare 502, while gunicorn restarts or is gone: clients
(the agent among them) retry a 503 after Retry-After, as for any outage of the service."""

from __future__ import annotations

import requests

from flk_site.testing import free_port
from tests.test_slow_clients_behind_the_proxy import Nginx


def test_a_missing_upstream_is_a_503_with_retry_after():
    proxy = Nginx(f"127.0.0.1:{free_port()}")  # nothing listens there: nginx gets connection refused
    try:
        answer = requests.post(f"{proxy.url}/v1/pcs/submit", data=b"{}", timeout=5,
                               headers={"Content-Type": "application/json"})  # fmt: skip
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "5"
        assert answer.json()["code"] == "upstream_unavailable"
        batch = requests.post(f"{proxy.url}/v1/pcs/batch", data=b"[]", timeout=5,
                              headers={"Content-Type": "application/json"})  # fmt: skip
        assert batch.status_code == 503 and batch.headers["Retry-After"] == "5"
    finally:
        proxy.stop()
