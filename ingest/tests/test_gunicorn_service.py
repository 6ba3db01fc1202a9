"""The service as operators run it (`gunicorn flk_site.wsgi`, settings from the environment)."""

from __future__ import annotations

import json

import requests

from flk_site.testing import make_pcs, signed


def test_a_signed_pcs_is_accepted_then_deduplicated_under_gunicorn(gunicorn_service):
    service = gunicorn_service()
    data = json.dumps(signed(make_pcs()))
    headers = {"Content-Type": "application/json"}
    first = requests.post(f"{service.url}/v1/pcs/submit", data=data, headers=headers, timeout=10)
    again = requests.post(f"{service.url}/v1/pcs/submit", data=data, headers=headers, timeout=10)
    assert first.status_code == again.status_code == 200
    assert first.json()["dedup"] is False and again.json()["dedup"] is True


def test_unsigned_production_configuration_is_refused_at_start(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "flk_site.settings", "DJANGO_DEBUG": "0",
           "DJANGO_SECRET_KEY": "x" * 50, "PCS_SIGN_ALG": "none", "FLK_VAR_DIR": str(tmp_path)}  # fmt: skip
    env.pop("FLK_ALLOW_UNSIGNED", None)
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode != 0
    assert "FLK_ALLOW_UNSIGNED" in result.stderr


def test_a_chunked_body_is_read_whole_and_an_endless_one_stops_at_the_size_limit(gunicorn_service):
    service = gunicorn_service()
    data = json.dumps(signed(make_pcs())).encode()
    headers = {"Content-Type": "application/json"}
    pieces = iter([data[:100], data[100:]])  # a generator body: requests sends it chunked, no Content-Length
    response = requests.post(f"{service.url}/v1/pcs/submit", data=pieces, headers=headers, timeout=10)
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 200 and response.json()["pcs_id"] == json.loads(data)["pcs_id"]
    again = requests.post(f"{service.url}/v1/pcs/submit", data=data, headers=headers, timeout=10)
    assert again.status_code == 200 and again.json()["dedup"] is True
    endless = (b" " * 4096 for _ in range(10_000))  # 40 MB of padding: the service reads 64 KiB and answers
    too_large = requests.post(f"{service.url}/v1/pcs/submit", data=endless, headers=headers, timeout=10)
    assert too_large.status_code == 413 and too_large.json()["code"] == "body_too_large"


def test_a_malformed_chunked_body_is_a_400_and_nothing_is_stored(gunicorn_service):
    import socket

    from ingest.models import PcsRecord

    service = gunicorn_service()
    port = int(service.url.rsplit(":", 1)[1])
    body = json.dumps(signed(make_pcs())).encode()
    request = (b"POST /v1/pcs/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n")  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["code"] == "malformed_chunked_body"
    assert not PcsRecord.objects.exists()
