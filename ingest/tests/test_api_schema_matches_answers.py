"""The OpenAPI schema served at /api/schema/ describes what the service really answers, and its examples work.

Real answers over HTTP from the live test server (verdicts with and without the conformal block, a replay, every
error the submit path gives, outcome reads with and without a label, a batch) are validated against the
response schema the document gives for their path, method and status (JSON Schema 2020-12, OpenAPI 3.1). The
request examples are sent as Swagger UI's "Try it out" sends them, and are accepted.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from calibration import services as calibration
from calibration.models import GLOBAL_SET
from flk_site.testing import make_pcs, signed
from tenancy.models import ApiKey, Tenant

SCHEMA_URI = "urn:flk:openapi"
LOW = {"coh_star": 0.95, "r": 0.65}  # accepted against the calibration below
MID = {"coh_star": 0.73, "r": 0.87}  # escalated: p-value in (reject_delta, delta]
HIGH = {"coh_star": 0.2, "r": 0.05}  # rejected: beyond every benign score


class Api:
    """The live service and its published schema: every answer read through it is checked against the schema."""

    def __init__(self, base: str):
        self.base = base
        self.document = requests.get(
            f"{base}/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}
        ).json()
        assert self.document["openapi"].startswith("3.1")
        self.registry = Registry().with_resource(SCHEMA_URI, Resource.from_contents(self.document, DRAFT202012))
        self.checked: set[tuple[str, str, int]] = set()

    def operation(self, path: str, method: str) -> dict[str, Any]:
        return self.document["paths"][path][method]

    def check(self, path: str, method: str, response: requests.Response) -> dict[str, Any]:
        assert response.headers["Content-Type"] == "application/json", response.text
        status = str(response.status_code)
        responses = self.operation(path, method)["responses"]
        assert status in responses, f"{method.upper()} {path} answered {status}, which the schema does not list"
        pointer = "/".join(["#", "paths", path.replace("~", "~0").replace("/", "~1"), method, "responses", status,
                            "content", "application~1json", "schema"])  # fmt: skip
        validator = Draft202012Validator(
            {"$ref": SCHEMA_URI + pointer}, registry=self.registry, format_checker=FormatChecker()
        )
        body = response.json()
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{method.upper()} {path} {status}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors[:5]
        )
        self.checked.add((path, method, response.status_code))
        return body

    def submit(self, pcs: dict | bytes, tenant: str | None = None) -> dict[str, Any]:
        data = pcs if isinstance(pcs, bytes) else json.dumps(pcs).encode()
        headers = {"Content-Type": "application/json", **({"X-Tenant-Id": tenant} if tenant else {})}
        return self.check("/v1/pcs/submit", "post", requests.post(f"{self.base}/v1/pcs/submit", data, headers=headers))

    def outcome(self, pcs_id: str, key: str | None = None, expect: int = 200) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = requests.get(f"{self.base}/v1/pcs/{pcs_id}", headers=headers)
        assert response.status_code == expect, response.text
        return self.check("/v1/pcs/{pcs_id}", "get", response)


def calibrate_default() -> None:
    # 200 benign scores (as calibration/tests/test_conformal_decision.py): LOW accepted, MID escalated, HIGH rejected.
    scores = [0.1] * 185 + [0.4] * 10 + [0.6] * 5
    for n, score in enumerate(scores):
        calibration.record_label(tenant="default", pcs_id=f"cal-{n}", score=score, label="benign", provenance="audit")
    for name in ("default", GLOBAL_SET):
        calibration.recalibrate_tenant(name, delta=0.05, n_min=100, params_version=1)
    calibration.announce_snapshot()


@pytest.mark.django_db(transaction=True)
def test_the_request_examples_are_accepted_as_try_it_out_sends_them(live_server, hmac_default_tenant):
    api = Api(live_server.url)
    submit = api.operation("/v1/pcs/submit", "post")["requestBody"]["content"]["application/json"]
    for name, example in submit["examples"].items():
        answer = api.submit(example["value"])
        assert answer["accepted"] is True, f"the example {name!r} is not accepted: {answer}"
    batch = api.operation("/v1/pcs/batch", "post")["requestBody"]["content"]["application/json"]
    for example in batch["examples"].values():
        response = requests.post(f"{api.base}/v1/pcs/batch", json.dumps(example["value"]),
                                 headers={"Content-Type": "application/json"})  # fmt: skip
        results = api.check("/v1/pcs/batch", "post", response)["results"]
        assert [r["status"] for r in results] == [200] * len(example["value"]), results


@pytest.mark.django_db(transaction=True)
def test_every_answer_of_the_submit_path_is_described_by_the_schema(live_server, hmac_default_tenant, settings):
    api = Api(live_server.url)
    # Before calibration: the checks alone decide, the conformal block is null.
    plain = api.submit(signed(make_pcs()))
    assert plain["conformal"] is None and plain["decision"] == "accept"
    degraded = api.submit(signed(make_pcs(degraded=True)))
    assert degraded["decision"] == "escalate" and degraded["reasons"]

    calibrate_default()
    accepted = signed(make_pcs(**LOW))
    assert api.submit(accepted)["conformal"]["source"] == "own"
    assert api.submit(signed(make_pcs(**MID)))["decision"] == "escalate"
    assert api.submit(signed(make_pcs(**HIGH)))["decision"] == "reject"
    assert api.submit(accepted)["dedup"] is True
    assert api.submit(signed({**accepted, "r": 0.5}))["code"] == "pcs_id_conflict"  # 409

    assert "scales" in api.submit(signed({**make_pcs(), "scales": [1, 1]}))  # 400 field errors
    assert "ft" in api.submit(signed(make_pcs(ft={"degraded": "yes"})))  # nested field errors
    assert "X-Tenant-Id" in api.submit(make_pcs(), tenant="bad tenant!")
    assert api.submit(signed(make_pcs(), key=b"another key"))["code"] == "signature_invalid"  # 401 with key_ids
    assert api.submit(make_pcs(), tenant="nobody")["code"] == "unknown_tenant"
    assert api.submit(b"{" + b" " * settings.FLK_MAX_BODY_BYTES + b"}")["code"] == "body_too_large"  # 413

    Tenant.objects.create(name="slow", sign_alg="none", rate_per_second=0.001, burst=1)
    api.submit(make_pcs(), tenant="slow")
    assert api.submit(make_pcs(), tenant="slow")["code"] == "rate_limited"  # 429

    settings.FLK_WAL_MIN_FREE_BYTES = 2**62  # no disk has this much free: the WAL refuses, 503
    assert api.submit(signed(make_pcs()))["code"] == "wal_full"

    assert {code for _p, _m, code in api.checked} >= {200, 202, 400, 401, 409, 413, 429, 503}


@pytest.mark.django_db(transaction=True)
def test_outcome_reads_and_batch_results_are_described_by_the_schema(live_server, hmac_default_tenant):
    api = Api(live_server.url)
    key = ApiKey(tenant=Tenant.objects.get(name="default"), name="schema test")
    secret = key.issue()
    first, second = signed(make_pcs()), signed(make_pcs(degraded=True))
    for pcs in (first, second):
        api.submit(pcs)
    calibration.record_label(tenant="default", pcs_id=second["pcs_id"], label="anomalous", provenance="escalation")
    assert api.outcome(first["pcs_id"], secret)["label"] is None
    read = api.outcome(second["pcs_id"], secret)
    assert (read["status_code"], read["label"]["label"]) == (202, "anomalous")
    api.outcome(first["pcs_id"], None, expect=401)
    api.outcome("0" * 64, secret, expect=404)

    batch = [signed(make_pcs()), first, signed({**first, "r": 0.5}), {"pcs_id": "x"}, signed(make_pcs(degraded=True))]
    response = requests.post(
        f"{api.base}/v1/pcs/batch", json.dumps(batch), headers={"Content-Type": "application/json"}
    )
    results = api.check("/v1/pcs/batch", "post", response)["results"]
    assert [r["status"] for r in results] == [200, 200, 409, 400, 202]
    assert results[1]["body"]["dedup"] is True


@pytest.mark.django_db(transaction=True)
def test_an_async_batch_answer_and_its_status_are_described_by_the_schema(live_server, hmac_default_tenant):
    """Prefer: respond-async answers 202 with a status URL (found undescribed by the API fuzzing)."""
    api = Api(live_server.url)
    parameters = {p["name"] for p in api.operation("/v1/pcs/batch", "post")["parameters"]}
    assert "Prefer" in parameters
    response = requests.post(f"{api.base}/v1/pcs/batch", json.dumps([signed(make_pcs())]),
                             headers={"Content-Type": "application/json", "Prefer": "respond-async"})  # fmt: skip
    assert response.status_code == 202
    queued = api.check("/v1/pcs/batch", "post", response)
    assert response.headers["Location"] == queued["status_url"]
    status = api.check("/v1/pcs/batch/{job_id}", "get", requests.get(f"{api.base}{queued['status_url']}"))
    assert status["id"] == queued["id"]
