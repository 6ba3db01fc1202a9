"""The admin pages of tenants, keys, VerifyParams and what-if reports were under /admin/ingest/ before the
tenancy and policy apps: those addresses send to the same page at its new one, query string included."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "old, new",
    [
        ("/admin/ingest/tenant/", "/admin/tenancy/tenant/"),
        ("/admin/ingest/tenant/?q=acme", "/admin/tenancy/tenant/?q=acme"),
        ("/admin/ingest/tenant/1/change/", "/admin/tenancy/tenant/1/change/"),
        ("/admin/ingest/verifyparams/", "/admin/policy/verifyparams/"),
        ("/admin/ingest/verifyparams/1/whatif/", "/admin/policy/verifyparams/1/whatif/"),
        ("/admin/ingest/verifyparams/add/?from=1", "/admin/policy/verifyparams/add/?from=1"),
        ("/admin/ingest/whatifreport/", "/admin/policy/whatifreport/"),
    ],
)
def test_an_old_address_sends_to_the_new_one(admin_client, old, new):
    response = admin_client.get(old)
    assert (response.status_code, response["Location"]) == (301, new)
    assert admin_client.get(new).status_code in (200, 302)  # 302: a tenant or version id that does not exist


def test_the_records_stay_where_they_were(admin_client):
    assert admin_client.get("/admin/ingest/pcsrecord/").status_code == 200


@pytest.mark.parametrize("odd", ["/admin/ingest/tenant/%0d%0aSet-Cookie:x=1", "/admin/ingest/tenant//evil.example/"])
def test_an_odd_old_address_is_not_found_never_redirected_elsewhere(admin_client, odd):
    response = admin_client.get(odd)
    assert response.status_code in (301, 404)
    if response.status_code == 301:
        assert response["Location"].startswith("/admin/tenancy/tenant/")
