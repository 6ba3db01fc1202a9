"""Nothing opens by omission: unsigned ingest needs FLK_ALLOW_UNSIGNED=1 for every tenant, and outcome
reads need a key unless a tenant is made readable without one on purpose."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from flk_site.testing import issue_api_key, make_pcs, manage
from tenancy.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db(transaction=True)  # key changes are announced on commit, as in service
ADD_URL = "/admin/tenancy/tenant/add/"


@pytest.fixture
def production_signing(settings):
    settings.FLK_ALLOW_UNSIGNED = False


def tenant_form(**fields: str) -> dict[str, str]:
    return {"name": "acme", "enabled": "on", "sign_alg": "hmac", "min_pcs_version": "0.1", "rate_per_second": "", "burst": "",
            "signing_keys-TOTAL_FORMS": "0", "signing_keys-INITIAL_FORMS": "0", "signing_keys-MIN_NUM_FORMS": "0",
            "signing_keys-MAX_NUM_FORMS": "1000", "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0",
            "api_keys-MIN_NUM_FORMS": "0", "api_keys-MAX_NUM_FORMS": "1000", **fields}  # fmt: skip


def test_the_admin_refuses_an_unsigned_tenant(admin_client, make_tenant, production_signing):
    response = admin_client.post(ADD_URL, tenant_form(sign_alg="none"))
    assert response.status_code == 200
    assert "FLK_ALLOW_UNSIGNED=1" in str(response.context["adminform"].form.errors["sign_alg"])
    assert not Tenant.objects.filter(name="acme").exists()


def test_model_validation_refuses_an_unsigned_tenant(make_tenant, production_signing):
    with pytest.raises(ValidationError, match="FLK_ALLOW_UNSIGNED"):
        Tenant(name="acme", sign_alg="none").full_clean()
    Tenant(name="acme", sign_alg="hmac").full_clean()


def test_an_unsigned_tenant_row_accepts_nothing_unsigned(make_tenant, submit, settings):
    make_tenant("legacy", sign_alg="none")  # saved around validation, e.g. by a script
    assert submit(make_pcs(), tenant="legacy").status_code == 200  # FLK_ALLOW_UNSIGNED=1, as the tests run
    settings.FLK_ALLOW_UNSIGNED = False
    refused = submit(make_pcs(), tenant="legacy")
    assert refused.status_code == 401 and refused.json()["code"] == "unsigned_refused"


def test_the_service_refuses_to_start_unsigned_unless_allowed_even_in_debug():
    env = {"PCS_SIGN_ALG": "none", "DJANGO_DEBUG": "1", "FLK_ALLOW_UNSIGNED": "0"}
    with pytest.raises(RuntimeError, match="FLK_ALLOW_UNSIGNED=1"):
        manage(env, "check")
    assert "no issues" in manage({**env, "FLK_ALLOW_UNSIGNED": "1"}, "check")


def _read(client, pcs_id: str, tenant: str, key: str | None = None):
    headers = {"HTTP_X_TENANT_ID": tenant}
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client.get(f"/v1/pcs/{pcs_id}", **headers)


def test_a_new_tenant_is_closed_to_reads_without_a_key(client, make_tenant, submit):
    make_tenant("acme", sign_alg="none")
    pcs = make_pcs()
    assert submit(pcs, tenant="acme").status_code == 200
    assert _read(client, pcs["pcs_id"], "acme").status_code == 401


def test_removing_the_last_key_never_reopens_reads(client, make_tenant, submit):
    make_tenant("acme", sign_alg="none")
    pcs = make_pcs()
    submit(pcs, tenant="acme")
    key = issue_api_key("acme")
    assert _read(client, pcs["pcs_id"], "acme", key).status_code == 200
    ApiKey.objects.filter(tenant__name="acme").delete()
    assert _read(client, pcs["pcs_id"], "acme").status_code == 401
    assert _read(client, pcs["pcs_id"], "acme", key).status_code == 401


def test_unknown_tenant_and_wrong_key_get_the_same_answer(client, make_tenant, submit):
    make_tenant("acme", sign_alg="none")
    make_tenant("paused", sign_alg="none", enabled=False)
    pcs = make_pcs()
    submit(pcs, tenant="acme")
    issue_api_key("acme")
    paused_key = issue_api_key("paused")
    answers = [
        _read(client, pcs["pcs_id"], "nobody"),
        _read(client, pcs["pcs_id"], "nobody", "flk_00000000_guess"),
        _read(client, pcs["pcs_id"], "acme"),
        _read(client, pcs["pcs_id"], "acme", "flk_00000000_guess"),
        _read(client, pcs["pcs_id"], "paused", paused_key),
    ]
    seen = {(a.status_code, a.content, a["WWW-Authenticate"]) for a in answers}
    assert len(seen) == 1
    status, content, _ = seen.pop()
    assert status == 401 and b"acme" not in content and b"nobody" not in content
