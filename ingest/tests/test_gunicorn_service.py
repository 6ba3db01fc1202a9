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
