"""The admin pages of tenants, keys, VerifyParams and what-if reports were under /admin/ingest/ before the
tenancy and policy apps: those addresses send to the same page at its new one, query string included."""

from __future__ import annotations

import pytest

from flk_site.testing import ensure_defaults
from policy.models import VerifyParams
from tenancy.models import DEFAULT_TENANT, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def defaults(db):
    ensure_defaults()  # the default tenant and an active version, whatever an earlier test left


@pytest.mark.parametrize(
    "old, new",
    [
        ("/admin/ingest/tenant/", "/admin/tenancy/tenant/"),
        ("/admin/ingest/tenant/?q=acme", "/admin/tenancy/tenant/?q=acme"),
        ("/admin/ingest/tenant/{tenant}/change/", "/admin/tenancy/tenant/{tenant}/change/"),
        ("/admin/ingest/verifyparams/", "/admin/policy/verifyparams/"),
        ("/admin/ingest/verifyparams/{version}/whatif/", "/admin/policy/verifyparams/{version}/whatif/"),
        ("/admin/ingest/verifyparams/add/?from={version}", "/admin/policy/verifyparams/add/?from={version}"),
        ("/admin/ingest/whatifreport/", "/admin/policy/whatifreport/"),
    ],
)
def test_an_old_address_sends_to_the_new_one(admin_client, old, new):
    ids = {"tenant": Tenant.objects.get(name=DEFAULT_TENANT).pk, "version": VerifyParams.objects.get(is_active=True).pk}
    old, new = old.format(**ids), new.format(**ids)
    response = admin_client.get(old)
    assert (response.status_code, response["Location"]) == (301, new)
    assert admin_client.get(new).status_code == 200


def test_the_records_stay_where_they_were(admin_client):
    assert admin_client.get("/admin/ingest/pcsrecord/").status_code == 200


@pytest.mark.parametrize("odd", ["/admin/ingest/tenant/%0d%0aSet-Cookie:x=1", "/admin/ingest/tenant//evil.example/"])
def test_an_odd_old_address_is_not_found_never_redirected_elsewhere(admin_client, odd):
    response = admin_client.get(odd)
    assert response.status_code in (301, 404)
    if response.status_code == 301:
        assert response["Location"].startswith("/admin/tenancy/tenant/")
