"""API fuzzing: schemathesis generates requests from the service's own /api/schema/ and checks every answer.

The submit and batch endpoints (JSON array and NDJSON) and the outcome reads (a PCS, a batch job) get requests
that fit the schema and requests that break it, through the real WSGI application, PostgreSQL and Redis. For
every one: no 5xx, and the status, the content type, the headers and the body are the ones the schema gives
for that operation. Most generated PCS are unsigned or inconsistent and end in a 400 or 401; a drawn share of
them, of protocol 0.1 and 0.2, is made consistent and signed with the tenant's key first, so that the
verification, the dedup and the store answer (200, 202, 409) are fuzzed too. Outcome reads are pointed, for a
drawn share, at a stored PCS (with a real API key) or a judged batch job, so that their 200 is fuzzed as well.

Bounded: ``EXAMPLES`` per operation and generation mode keeps the file well under a minute.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agent_client.canonical import pcs_id_for
from flk_site.testing import issue_api_key, make_pcs, signed

pytestmark = pytest.mark.django_db
# Per operation and generation mode; FLK_FUZZ_EXAMPLES=2000 runs a longer search by hand.
EXAMPLES = int(os.environ.get("FLK_FUZZ_EXAMPLES", "100"))
TENANT = "fuzz"
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Generated values that replace a consistent PCS's own: the signals, the bookkeeping and any unknown field.
OVERLAID = ("coh_star", "D_hat", "r", "regime", "budget", "v_star", "ft", "attempt", "sent_at", "seed", "epoch",
            "shard_id", "merkle_root")  # fmt: skip


@pytest.fixture
def api(make_tenant, settings, client, django_capture_on_commit_callbacks):
    """The schema as the service serves it, bound to the service's WSGI application; the fuzz tenant with two
    stored outcomes, an API key and a judged batch job, for the reads to find."""
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
    make_tenant(TENANT, hmac={"k1": "testkey"}, min_pcs_version="0.1")
    key = issue_api_key(TENANT)  # before the first request loads the tenant's credentials into the process
    headers = {"HTTP_X_TENANT_ID": TENANT}
    stored = [signed(make_pcs()), signed(make_pcs(degraded=True, version="0.1"))]
    for pcs in stored:
        assert client.post("/v1/pcs/submit", pcs, content_type="application/json", **headers).status_code in (200, 202)
    with django_capture_on_commit_callbacks(execute=True):  # the job is judged (eager tasks) once committed
        queued = client.post("/v1/pcs/batch", [signed(make_pcs())], content_type="application/json",
                             HTTP_PREFER="respond-async", **headers)  # fmt: skip
    assert queued.status_code == 202, queued.content
    known.update(pcs_ids=[p["pcs_id"] for p in stored], job_id=queued.json()["id"], key=key)
    # As Django's test client does: the request signals must not close the connection that holds the test's
    # transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


known: dict[str, Any] = {}  # what the api fixture stored, for the reads to point at


def consistent(generated: Any, version: str, overlay: bool) -> dict[str, Any]:
    """A PCS of ``version`` signed with the tenant's key: consistent scales and counts, with the generated
    signals and other fields laid over it when ``overlay`` (they may fail the checks, not the signature)."""
    pcs = make_pcs(version=version)
    if overlay and isinstance(generated, dict):
        pcs.update({k: v for k, v in generated.items() if k in OVERLAID or k not in pcs})
        pcs["version"] = version
        if all(isinstance(pcs.get(k), t) for k, t in (("merkle_root", str), ("epoch", int), ("shard_id", str))):
            pcs["pcs_id"] = pcs_id_for(pcs["merkle_root"], pcs["epoch"], pcs["shard_id"])
    pcs.pop("sig", None)
    try:
        return signed(pcs)
    except (TypeError, ValueError):  # an unfit value (a list for D_hat) has no signed form: sent unsigned
        return pcs


def fuzz(
    api, path: str, method: str, mode: GenerationMode, prepare, media_types=(None,), checks=CONFORMANCE
) -> Counter:
    """Send ``EXAMPLES`` generated requests to one operation, each through ``prepare(case, draw)``; every
    answer must pass the conformance checks. The statuses answered, for the test to say what was reached."""
    operation = api[path][method]
    strategy = st.one_of(*(operation.as_strategy(generation_mode=mode, media_type=m) for m in media_types))
    seen: Counter = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=strategy, data=st.data())
    def run(case, data):
        prepare(case, data.draw)
        response = case.call_and_validate(checks=checks)
        seen[response.status_code] += 1

    run()
    print(f"{method} {path} {mode.value}: {dict(seen)}")  # shown with -s: what the examples reached
    return seen


def sign_some(case, draw) -> None:
    """For a drawn share of the cases, the body becomes one (or, for a batch, several) signed PCS; a drawn
    share of batches asks to be answered asynchronously."""
    if case.operation.path == "/v1/pcs/batch" and draw(st.booleans()):
        case.headers = {**(case.headers or {}), "Prefer": draw(st.sampled_from(["respond-async", "wait=5"]))}
    if not draw(st.booleans()):
        return
    case.headers = {**(case.headers or {}), "X-Tenant-Id": TENANT}
    overlay = draw(st.booleans())
    versions = st.sampled_from(["0.1", "0.2"])
    if case.operation.path == "/v1/pcs/submit":
        case.body = consistent(case.body, draw(versions), overlay)
        return
    items = case.body if isinstance(case.body, list) else [case.body]
    pcs = [consistent(item, draw(versions), overlay) for item in items[:5]] or [consistent(None, "0.2", False)]
    if draw(st.booleans()):  # a replay of an item within the batch
        pcs.append(pcs[0])
    if case.media_type == "application/x-ndjson":
        case.body = "\n".join(json.dumps(p) for p in pcs)
    else:
        case.body = pcs


def read_known(case, draw) -> None:
    """For a drawn share of the reads, a stored PCS or the judged job of the tenant, with its API key."""
    if not draw(st.booleans()):
        return
    case.headers = {**(case.headers or {}), "X-Tenant-Id": TENANT}
    if case.operation.path == "/v1/pcs/batch/{job_id}":
        case.path_parameters = {"job_id": known["job_id"]}
        return
    case.path_parameters = {"pcs_id": draw(st.sampled_from(known["pcs_ids"]))}
    if draw(st.booleans()):
        case.headers["Authorization"] = f"Bearer {known['key']}"


MODES = pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["fit", "unfit"])


# Submit also checks that a request the schema refuses is refused (4xx), never answered with a verdict.
@MODES
def test_submit_answers_conform_to_the_schema_and_are_never_5xx(api, mode):
    seen = fuzz(api, "/v1/pcs/submit", "POST", mode, sign_some, checks=[*CONFORMANCE, negative_data_rejection])
    if mode == GenerationMode.POSITIVE:
        assert seen[200] + seen[202] > 0, f"no signed PCS reached the verdict: {seen}"


# Not negative_data_rejection: a batch whose items break the schema is answered 200 with each item's 400, by
# design (an item never fails the others); only a body that is not a batch is a 400 for the whole.
@MODES
def test_batch_answers_conform_to_the_schema_and_are_never_5xx(api, mode):
    seen = fuzz(api, "/v1/pcs/batch", "POST", mode, sign_some, media_types=("application/json", "application/x-ndjson"))
    if mode == GenerationMode.POSITIVE:
        assert seen[200] + seen[202] > 0, f"no batch was judged: {seen}"


# The reads are fuzzed with fit requests only: their path parameter and string headers leave schemathesis no
# unfit request that survives serialisation (it gives up as Unsatisfiable). Fit here already means any string
# as pcs_id, tenant name and Authorization, so unknown ids, malformed names and wrong keys are among them.


def test_outcome_reads_conform_to_the_schema_and_are_never_5xx(api):
    seen = fuzz(api, "/v1/pcs/{pcs_id}", "GET", GenerationMode.POSITIVE, read_known)
    assert seen[200] > 0 and seen[401] > 0 and seen[404] > 0, f"a read's answer was never reached: {seen}"


def test_batch_job_reads_conform_to_the_schema_and_are_never_5xx(api):
    seen = fuzz(api, "/v1/pcs/batch/{job_id}", "GET", GenerationMode.POSITIVE, read_known)
    assert seen[200] > 0 and seen[404] > 0, f"no batch job was read, or no unknown one: {seen}"
