"""GET /v1/pcs/<pcs_id> with API keys: a key is always required (unless a tenant is made public); deleting one revokes it."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from flk_site.testing import make_pcs
from tenancy.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db(transaction=True)  # key changes are announced on commit, as in service


def issue(tenant: str, name: str = "dashboard") -> str:
    return ApiKey(tenant=Tenant.objects.get(name=tenant), name=name).issue()


def get(client, pcs_id: str, tenant: str = "owner", authorization: str | None = None):
    headers = {"HTTP_X_TENANT_ID": tenant}
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    return client.get(f"/v1/pcs/{pcs_id}", **headers)


@pytest.fixture
def stored(make_tenant, submit) -> str:
    """The pcs_id of an outcome stored for the unsigned tenant "owner"."""
    make_tenant("owner", sign_alg="none")
    pcs = make_pcs()
    assert submit(pcs, tenant="owner").status_code == 200
    return pcs["pcs_id"]


def test_a_tenant_without_api_keys_is_readable_by_nobody(client, stored):
    refused = get(client, stored)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"


def test_a_tenant_made_public_on_purpose_is_readable_without_a_key(client, stored):
    Tenant.objects.filter(name="owner").update(outcomes_public=True)
    assert get(client, stored).status_code == 200


def test_with_an_api_key_a_read_needs_it(client, stored):
    key = issue("owner")
    missing = get(client, stored)
    assert missing.status_code == 401 and missing.json()["code"] == "unauthorized"
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert get(client, stored, authorization="Bearer flk_00000000_wrong").json()["code"] == "unauthorized"
    assert get(client, stored, authorization=f"Basic {key}").json()["code"] == "unauthorized"
    answer = get(client, stored, authorization=f"Bearer {key}")
    assert answer.status_code == 200 and answer.json()["pcs_id"] == stored
    assert key not in missing.content.decode() + answer.content.decode()


def test_the_key_of_another_tenant_is_refused(client, make_tenant, stored):
    make_tenant("other", sign_alg="none")
    issue("owner")
    other_key = issue("other")
    assert get(client, stored, authorization=f"Bearer {other_key}").json()["code"] == "unauthorized"


def test_a_deleted_key_is_refused_at_once_and_the_others_still_work(client, stored):
    old, new = issue("owner", "old"), issue("owner", "new")
    assert get(client, stored, authorization=f"Bearer {old}").status_code == 200  # cached by this process
    ApiKey.objects.filter(name="old").delete()
    assert get(client, stored, authorization=f"Bearer {old}").json()["code"] == "unauthorized"
    assert get(client, stored, authorization=f"Bearer {new}").status_code == 200


def test_submissions_do_not_need_the_api_key(make_tenant, submit, client):
    make_tenant("owner", sign_alg="none")
    issue("owner")
    assert submit(make_pcs(), tenant="owner").status_code == 200


def test_the_command_prints_a_working_key_once(client, stored):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "owner", "--name", "grafana", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert key.startswith("flk_") and "shown once" in err.getvalue()
    assert get(client, stored, authorization=f"Bearer {key}").status_code == 200
    assert ApiKey.objects.get(name="grafana").digest == ApiKey.digest_of(key)
    with pytest.raises(CommandError, match="no tenant named 'nobody'"):
        call_command("create_api_key", "nobody", "--name", "x")
