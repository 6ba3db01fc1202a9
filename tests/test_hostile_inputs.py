"""Hostile input changes nothing: each body of the corpus gets a 4xx with a JSON error, stores no row, and
leaves nothing in the inbox WAL that a replay would store later.

The corpus (deep nesting, numbers without a JSON or database form, NaN and infinities, duplicate keys that
would change the signed content, invalid UTF-8 and lone surrogates, 10 MB bodies, wrong content types) goes to
/v1/pcs/submit and to /v1/pcs/batch, as a JSON array and as NDJSON. A batch answers 200 when its body is a
batch, with the hostile item's own 4xx, as submit would answer that item alone (an item never fails the
others); a body that is not a batch is a 4xx for the whole. The bodies are signed with the tenant's key where a
signature can be made, so that they are refused for what they hold, not for a missing signature.

Chunked and slow bodies need a real server: ``tests/test_hostile_bodies_on_the_wire.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.apps import apps

from flk_site.testing import make_pcs, signed
from ingest import wal
from ingest.replay import replay_wal

pytestmark = pytest.mark.django_db
TENANT = "hostile"
MB10 = 10 * 1024 * 1024


def signed_text(version: str = "0.2", **fields) -> str:
    """A signed PCS as JSON text, with a closing brace that the corpus splices into."""
    return json.dumps(signed(make_pcs(version=version, **fields)))


def spliced(text: str, extra: str) -> bytes:
    """``text`` (a JSON object) with ``extra`` (", key: value" text) added before its closing brace."""
    return (text[:-1] + extra + "}").encode()


def duplicate_signed_field() -> bytes:
    """Two "r" keys: the signed value first, another after it, which a last-wins parser would verify."""
    text = signed_text()
    return text.replace('"r": 0.87', '"r": 0.87, "r": 0.12').encode()


def duplicate_pcs_id() -> bytes:
    """A second pcs_id naming another PCS, after the signed one."""
    return signed_text().replace('"pcs_id": ', '"pcs_id": "' + "0" * 64 + '", "pcs_id": ', 1).encode()


NESTED_OBJECTS = '{"a":' * 100_000 + "1" + "}" * 100_000
CORPUS: dict[str, Callable[[], bytes]] = {
    "100k nested arrays": lambda: b"[" * 100_000 + b"]" * 100_000,
    "100k nested objects in a field": lambda: spliced(signed_text(), ', "note": ' + NESTED_OBJECTS),
    "1e400 as D_hat": lambda: signed_text().replace('"D_hat": 0.857365188', '"D_hat": 1e400').encode(),
    "1e400 in an unknown field of 0.1": lambda: spliced(signed_text("0.1"), ', "note": 1e400'),
    "-1e400 in an unknown field of 0.2": lambda: spliced(signed_text(), ', "note": -1e400'),
    "a 5000-digit epoch": lambda: signed_text().replace('"epoch": ', '"epoch": ' + "9" * 5000 + ', "x": ', 1).encode(),
    "a 5000-digit integer in an unknown field of 0.1": lambda: spliced(signed_text("0.1"), ', "n": ' + "9" * 5000),
    "NaN as r": lambda: signed_text().replace('"r": 0.87', '"r": NaN').encode(),
    "Infinity as coh_star": lambda: signed_text().replace('"coh_star": 0.73', '"coh_star": Infinity').encode(),
    "-Infinity as budget": lambda: signed_text().replace('"budget": ', '"budget": -Infinity, "b0": ').encode(),
    "NaN in an unknown field of 0.1": lambda: spliced(signed_text("0.1"), ', "note": NaN'),
    "Infinity deep in an unknown field of 0.1": lambda: spliced(signed_text("0.1"), ', "note": {"a": [Infinity]}'),
    "duplicate key changing a signed field": duplicate_signed_field,
    "duplicate pcs_id": duplicate_pcs_id,
    "invalid UTF-8 byte": lambda: spliced(signed_text(), ', "note": "a\xffb"').replace(b"\xc3\xbf", b"\xff"),
    "UTF-8 of a surrogate": lambda: spliced(signed_text(), ', "note": "ab"').replace(b'"ab"', b'"a\xed\xa0\x80b"'),
    "lone surrogate escape": lambda: spliced(signed_text("0.1"), ', "note": "a\\udc00b"'),
    "lone surrogate escape in a key": lambda: spliced(signed_text("0.1"), ', "\\ud800": 1'),
    "NUL escape": lambda: spliced(signed_text("0.1"), ', "note": "a\\u0000b"'),
    "10 MB body": lambda: spliced(signed_text(), ', "pad": "' + "x" * MB10 + '"'),
}


@pytest.fixture
def hostile_tenant(make_tenant, settings, tmp_path):
    settings.FLK_WAL_DIR = tmp_path / "wal"
    make_tenant(TENANT, hmac={"env-hmac-1": "testkey"}, min_pcs_version="0.1")
    yield tmp_path / "wal"
    wal.close_writers()


def row_counts() -> dict[str, int]:
    """Rows in every table: outcomes, review items, calibration, batch jobs, anything."""
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def post(client, path: str, body: bytes, content_type: str):
    return client.generic("POST", path, body, content_type=content_type, HTTP_X_TENANT_ID=TENANT)


def refused(response) -> list[tuple[int, dict]]:
    """The (status, JSON body) of each refusal: the answer's, or every item's for a batch answered 200."""
    assert response["Content-Type"] == "application/json", response.content[:200]
    answer = json.loads(response.content)
    if response.status_code == 200 and "results" in answer:
        return [(item["status"], item["body"]) for item in answer["results"]]
    return [(response.status_code, answer)]


def assert_changes_nothing(before: dict[str, int], wal_dir) -> None:
    assert row_counts() == before
    wal.close_writers()
    report = replay_wal(wal_dir) if wal_dir.exists() else None
    assert report is None or report.stored == 0, report.as_dict()
    assert row_counts() == before  # replay stored nothing either


def assert_clear_refusals(answers: list[tuple[int, dict]]) -> None:
    assert answers, "no answer at all"
    for status, body in answers:
        assert 400 <= status < 500, (status, body)
        assert isinstance(body, dict) and body, body
        # An error with a code and words, or DRF field errors: a field (or non_field_errors) and its messages.
        assert (body.get("code") and body.get("detail")) or all(isinstance(v, (list, dict)) for v in body.values())


ENDPOINTS = {
    "submit": ("/v1/pcs/submit", "application/json", lambda body: body),
    "batch-json": ("/v1/pcs/batch", "application/json", lambda body: b"[" + body + b"]"),
    "batch-ndjson": ("/v1/pcs/batch", "application/x-ndjson", lambda body: body + b"\n"),
}


# Bodies that pass the schema and the signature and are refused by the database itself (a 0.1 PCS's unchecked
# field): the refused insert ends the transaction it ran in, so these run committed, as the service does.
REACH_THE_DATABASE = {"1e400 in an unknown field of 0.1"}
CASES = [pytest.param(name, marks=[pytest.mark.django_db(transaction=True)] if name in REACH_THE_DATABASE else [])
         for name in CORPUS]  # fmt: skip


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("name", CASES)
def test_a_hostile_body_is_refused_with_a_json_error_and_changes_nothing(client, hostile_tenant, name, endpoint):
    path, content_type, wrap = ENDPOINTS[endpoint]
    body = wrap(CORPUS[name]())
    if endpoint == "batch-ndjson" and b"\n" in body[:-1]:
        pytest.fail("an NDJSON line holds a newline: the case would be two items")
    before = row_counts()
    answers = refused(post(client, path, body, content_type))
    assert_clear_refusals(answers)
    assert_changes_nothing(before, hostile_tenant)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_a_valid_body_gets_through_the_same_requests(client, hostile_tenant, endpoint):
    """The control: the corpus is refused for what it holds, not because these requests cannot succeed."""
    path, content_type, wrap = ENDPOINTS[endpoint]
    response = post(client, path, wrap(signed_text().encode()), content_type)
    assert response.status_code == 200
    assert {status for status, _ in refused(response)} == {200}
    wal.close_writers()
    report = replay_wal(hostile_tenant)  # the WAL the corpus is checked in holds this body, stored already
    assert (report.seen, report.already_stored, report.stored) == (1, 1, 0), report.as_dict()


WRONG_TYPES = ["text/plain", "application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
               "application/octet-stream", "", "application/json-seq", "text/json"]  # fmt: skip


@pytest.mark.parametrize("path", ["/v1/pcs/submit", "/v1/pcs/batch"])
@pytest.mark.parametrize("content_type", WRONG_TYPES)
def test_a_valid_pcs_under_another_content_type_is_415_and_changes_nothing(client, hostile_tenant, path,
                                                                        content_type):  # fmt: skip
    body = signed_text().encode()
    if path.endswith("batch"):
        body = b"[" + body + b"]"
    before = row_counts()
    response = post(client, path, body, content_type)
    assert response.status_code == 415
    assert json.loads(response.content)["code"] == "unsupported_media_type"
    assert_changes_nothing(before, hostile_tenant)


@pytest.mark.parametrize("path", ["/v1/pcs/submit", "/v1/pcs/batch"])
def test_a_body_of_10_mb_is_413_before_it_is_read(client, hostile_tenant, path):
    before = row_counts()
    response = post(client, path, b"[" + b" " * MB10 + b"]", "application/json")
    assert response.status_code == 413 and json.loads(response.content)["code"] == "body_too_large"
    assert_changes_nothing(before, hostile_tenant)
