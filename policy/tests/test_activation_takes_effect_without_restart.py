"""A version activated in the admin is used by the running service's next submissions, in every worker."""

from __future__ import annotations

import json

import pytest
import requests

from flk_site.testing import make_pcs, signed
from policy.models import VerifyParams
from policy.params_rules import PARAM_FIELDS


def post(service, pcs) -> dict:
    response = requests.post(f"{service.url}/v1/pcs/submit", data=json.dumps(pcs),
                             headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
    return response.json()


@pytest.mark.slow
def test_the_next_submission_carries_the_activated_version(gunicorn_service, admin_client):
    # A long memo age: only the change announcement can make the workers re-read the parameters.
    service = gunicorn_service(workers=2, FLK_CONFIG_MAX_AGE_SECONDS="3600")
    assert {post(service, signed(make_pcs()))["params_version"] for _ in range(6)} == {1}

    active = VerifyParams.objects.get(is_active=True)
    data = {**{n: getattr(active, n) for n in PARAM_FIELDS}, "tol_d": 0.12, "reason": "narrower D̂ tolerance"}
    assert admin_client.post("/admin/policy/verifyparams/add/", data).status_code == 302
    draft = VerifyParams.objects.get(version=2)
    assert {post(service, signed(make_pcs()))["params_version"] for _ in range(6)} == {1}  # a draft is not in service

    assert admin_client.post(f"/admin/policy/verifyparams/{draft.pk}/activate/").status_code == 302
    assert {post(service, signed(make_pcs()))["params_version"] for _ in range(6)} == {2}

    v1 = VerifyParams.objects.get(version=1)
    admin_client.post(f"/admin/policy/verifyparams/{v1.pk}/activate/")  # rollback
    assert {post(service, signed(make_pcs()))["params_version"] for _ in range(6)} == {1}
