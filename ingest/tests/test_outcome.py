"""GET /v1/pcs/<pcs_id>: the stored outcome for the tenant, 404 otherwise."""

from __future__ import annotations

import pytest

from flk_site.testing import bearer, issue_api_key, make_pcs, signed

pytestmark = pytest.mark.django_db


def test_the_stored_outcome_is_returned(hmac_default_tenant, client, submit):
    key = bearer(issue_api_key())
    pcs = signed(make_pcs())
    first = submit(pcs).json()
    response = client.get(f"/v1/pcs/{pcs['pcs_id']}", **key)
    assert response.status_code == 200
    # "label" is the reviewer's label once there is one (None until then).
    assert response.json() == {**first, "status_code": 200, "label": None}


def test_an_unknown_pcs_id_is_404(hmac_default_tenant, client):
    response = client.get("/v1/pcs/" + "0" * 64, **bearer(issue_api_key()))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_malformed_pcs_id_is_404(hmac_default_tenant, client):
    assert client.get("/v1/pcs/not-an-id", **bearer(issue_api_key())).status_code == 404


def test_another_tenant_does_not_see_the_outcome(make_tenant, client, submit):
    make_tenant("owner", sign_alg="none")
    make_tenant("outsider", sign_alg="none")
    owner, outsider = bearer(issue_api_key("owner")), bearer(issue_api_key("outsider"))
    pcs = make_pcs()
    submit(pcs, tenant="owner")
    assert client.get(f"/v1/pcs/{pcs['pcs_id']}", HTTP_X_TENANT_ID="owner", **owner).status_code == 200
    assert client.get(f"/v1/pcs/{pcs['pcs_id']}", HTTP_X_TENANT_ID="outsider", **outsider).status_code == 404
