"""HTTPS is a switch of its own (FLK_HTTPS: Secure cookies and HSTS, redirect or not), and secrets are shown
once on a page of their own, never carried in a cookie; admins may register key material they bring."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
import yaml

from flk_site.testing import make_pcs, signed
from tenancy.models import ApiKey, SigningKey

ROOT = Path(__file__).resolve().parent.parent.parent
ADD_URL = "/admin/tenancy/tenant/add/"


def tenant_form(keys: list[dict] = (), api_keys: list[str] = (), **fields: str) -> dict[str, str]:
    data = {"name": "acme", "enabled": "on", "sign_alg": "hmac", "min_pcs_version": "0.1", "rate_per_second": "", "burst": "",
            "signing_keys-TOTAL_FORMS": str(len(keys)), "signing_keys-INITIAL_FORMS": "0",
            "signing_keys-MIN_NUM_FORMS": "0", "signing_keys-MAX_NUM_FORMS": "1000",
            "api_keys-TOTAL_FORMS": str(len(api_keys)), "api_keys-INITIAL_FORMS": "0",
            "api_keys-MIN_NUM_FORMS": "0", "api_keys-MAX_NUM_FORMS": "1000", **fields}  # fmt: skip
    for n, key in enumerate(keys):
        defaults = {"key_id": f"k{n}", "algorithm": "hmac", "public_key_b64": "", "brought_secret": "",
                    "valid_from_0": "", "valid_from_1": "", "valid_until_0": "", "valid_until_1": ""}  # fmt: skip
        data.update({f"signing_keys-{n}-{k}": v for k, v in {**defaults, **key}.items()})
    for n, name in enumerate(api_keys):
        data[f"api_keys-{n}-name"] = name
    return data


@pytest.mark.django_db
def test_new_secrets_are_shown_on_their_own_page_and_never_in_a_cookie(admin_client, make_tenant, submit):
    response = admin_client.post(ADD_URL, tenant_form(keys=[{"key_id": "k1"}], api_keys=["grafana"]))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = response.content.decode()
    hmac_secret = re.search(r'data-name="k1">([^<]+)</code>', page).group(1)
    api_key = re.search(r'data-name="grafana">([^<]+)</code>', page).group(1)
    assert SigningKey.objects.get(key_id="k1").secret == hmac_secret
    assert ApiKey.objects.get(name="grafana").digest == ApiKey.digest_of(api_key)
    # Nothing travels in a cookie, and no later page shows either secret again.
    assert "messages" not in response.cookies
    for cookie in response.cookies.values():
        assert hmac_secret not in cookie.value and api_key not in cookie.value
    again = admin_client.get(f"/admin/tenancy/tenant/{SigningKey.objects.get(key_id='k1').tenant_id}/change/")
    assert hmac_secret not in again.content.decode() and api_key not in again.content.decode()
    assert "messages" not in again.cookies
    assert submit(signed(make_pcs(), key=hmac_secret.encode()), tenant="acme").status_code == 200


@pytest.mark.django_db
def test_an_admin_registers_an_hmac_secret_the_agents_already_hold(admin_client, make_tenant, submit):
    brought = "agents-already-hold-this-secret-0123456789"
    response = admin_client.post(ADD_URL, tenant_form(keys=[{"key_id": "k1", "brought_secret": brought}]))
    assert response.status_code == 302  # nothing was generated: no secret page
    assert SigningKey.objects.get(key_id="k1").secret == brought
    assert brought not in admin_client.get(response["Location"]).content.decode()
    assert submit(signed(make_pcs(), key=brought.encode()), tenant="acme").status_code == 200


@pytest.mark.django_db
def test_a_short_or_misplaced_brought_secret_is_refused(admin_client, make_tenant):
    short = admin_client.post(ADD_URL, tenant_form(keys=[{"key_id": "k1", "brought_secret": "too-short"}]))
    assert "brought_secret" in short.context["inline_admin_formsets"][0].formset.errors[0]
    from flk_site.testing import ed25519_public_b64

    ed = {"key_id": "e1", "algorithm": "ed25519", "public_key_b64": ed25519_public_b64(), "brought_secret": "x" * 40}
    misplaced = admin_client.post(ADD_URL, tenant_form(keys=[ed], sign_alg="ed25519"))
    assert "brought_secret" in misplaced.context["inline_admin_formsets"][0].formset.errors[0]
    assert not SigningKey.objects.exists()


def _login_page(service) -> requests.Response:
    return requests.get(f"{service.url}/accounts/login/", timeout=10, allow_redirects=False)


def test_flk_https_marks_cookies_secure_and_sends_hsts_without_redirecting(gunicorn_service):
    service = gunicorn_service(workers=1, FLK_HTTPS="1", FLK_HSTS_SECONDS="600", DJANGO_SECURE_SSL_REDIRECT="0")
    page = _login_page(service)
    assert page.status_code == 200  # no redirect: TLS ends at the proxy
    assert page.headers["Strict-Transport-Security"] == "max-age=600"
    assert "secure" in page.headers["Set-Cookie"].lower()
    assert "Strict-Transport-Security" in requests.get(f"{service.url}/healthz", timeout=10).headers


def test_without_flk_https_there_is_no_hsts_and_no_secure_flag(gunicorn_service):
    page = _login_page(gunicorn_service(workers=1))
    assert "Strict-Transport-Security" not in page.headers
    assert "secure" not in page.headers["Set-Cookie"].lower()


def test_the_caddy_overlay_and_the_chart_turn_https_on():
    from tests.test_deployment_helm_chart import render

    overlay = yaml.safe_load((ROOT / "docker-compose.caddy.yml").read_text())
    assert overlay["services"]["web"]["environment"]["FLK_HTTPS"] == "1"

    def web_env(*settings: str) -> dict[str, str]:
        web = next(d for d in render(*settings) if d["kind"] == "StatefulSet")
        container = next(c for c in web["spec"]["template"]["spec"]["containers"] if c["name"] == "web")
        return {e["name"]: e.get("value") for e in container["env"]}

    with_tls = web_env("ingress.tls.hstsSeconds=600")
    assert (with_tls["FLK_HTTPS"], with_tls["FLK_HSTS_SECONDS"]) == ("1", "600")
    assert web_env("ingress.enabled=false")["FLK_HTTPS"] == "0"
