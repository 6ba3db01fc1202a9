"""Fifty identical submissions at once over real HTTP produce one row and identical answers."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from flk_site.testing import make_pcs, signed
from ingest.models import PcsRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("escalated", [False, True])
def test_fifty_concurrent_identical_submissions_make_one_record(live_server, hmac_default_tenant, escalated):
    pcs = make_pcs()
    if escalated:
        pcs["D_hat"] = 2.9
    data = json.dumps(signed(pcs))
    url = f"{live_server.url}/v1/pcs/submit"
    start = Barrier(50)

    def post(_):
        with requests.Session() as session:
            start.wait()
            r = session.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=30)
            return r.status_code, r.json()

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(post, range(50)))

    statuses = {status for status, _ in results}
    assert statuses == {202 if escalated else 200}
    firsts = [body for _, body in results if body["dedup"] is False]
    assert len(firsts) == 1
    canonical = {json.dumps({**body, "dedup": False}, sort_keys=True) for _, body in results}
    assert len(canonical) == 1
    assert PcsRecord.objects.filter(pcs_id=pcs["pcs_id"]).count() == 1


def test_concurrent_conflicting_submissions_store_one_and_refuse_the_other(live_server, hmac_default_tenant):
    pcs = make_pcs()
    variants = [
        json.dumps(signed(dict(pcs, coh_star=0.70 + i / 1000, budget=round(0.279 + 0.2 * i / 1000, 9))))
        for i in range(20)
    ]
    url = f"{live_server.url}/v1/pcs/submit"
    start = Barrier(20)

    def post(data):
        start.wait()
        return requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=30).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(post, variants))
    assert sorted(statuses).count(409) == 19
    assert PcsRecord.objects.filter(pcs_id=pcs["pcs_id"]).count() == 1
