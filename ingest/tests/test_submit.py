"""POST /v1/pcs/submit: verdicts, answers and what is stored."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from flk_site.testing import make_pcs, signed
from ingest import services
from ingest.models import PcsRecord
from ingest.views import SubmitView

VECTORS = json.loads((Path(__file__).parents[2] / "agent_client/tests/vectors/pcs_vectors.json").read_text())
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("case", VECTORS["pcs"], ids=lambda c: c["name"])
def test_golden_pcs_get_their_expected_answer(hmac_default_tenant, submit, case):
    response = submit(case["pcs"])
    answer = response.json()
    assert response.status_code == case["verify"]["http_status"]
    assert answer["decision"] == case["verify"]["decision"]
    assert answer["accepted"] is (case["verify"]["decision"] == "accept")
    assert [r["code"] for r in answer["reasons"]] == case["verify"]["failed_checks"]
    assert answer["recomputed"] == {
        "D_hat": case["verify"]["recomputed_D_hat"],
        "regime": case["verify"]["expected_regime"],
        "budget": case["verify"]["expected_budget"],
    }
    assert answer["params_version"] == 1
    assert answer["dedup"] is False
    assert PcsRecord.objects.get(pcs_id=case["pcs"]["pcs_id"]).status_code == response.status_code


def test_the_record_keeps_the_body_and_outcome(hmac_default_tenant, submit):
    pcs = signed(make_pcs())
    submit(pcs)
    record = PcsRecord.objects.get(pcs_id=pcs["pcs_id"])
    assert record.tenant.name == "default"
    assert record.body == pcs
    assert record.decision == "accept"
    assert record.key_id == "env-hmac-1"
    assert record.response["pcs_id"] == pcs["pcs_id"]
    assert record.params_version == 1


def test_field_errors_come_back_drf_style_and_store_nothing(hmac_default_tenant, submit):
    pcs = signed(make_pcs(r=1.5))
    response = submit(pcs)
    assert response.status_code == 400
    assert response.json() == {"r": ["must be within [0, 1]"]}
    assert not PcsRecord.objects.exists()


@pytest.mark.parametrize("raw", [b"{oops", b"[]", b"42", b"   "])
def test_invalid_json_or_non_object_is_400(unsigned_default_tenant, submit, raw):
    response = submit(raw)
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_body_that_is_not_declared_json_is_415(unsigned_default_tenant, submit, content_type):
    response = submit(make_pcs(), content_type=content_type)
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_json_with_a_charset_is_accepted(unsigned_default_tenant, submit):
    assert submit(make_pcs(), content_type="application/json; charset=utf-8").status_code == 200


def test_a_body_over_the_limit_is_413_and_not_stored(unsigned_default_tenant, submit, settings):
    settings.FLK_MAX_BODY_BYTES = 2048
    pcs = make_pcs(padding="x" * 4096)
    response = submit(pcs)
    assert response.status_code == 413
    assert not PcsRecord.objects.exists()


@pytest.mark.parametrize("header", ["", "a" * 65, "bad tenant", "tenant/1", "ü"])
def test_a_malformed_tenant_header_is_400(unsigned_default_tenant, submit, header):
    response = submit(make_pcs(), tenant=header)
    assert response.status_code == 400
    assert "X-Tenant-Id" in response.json()


def test_an_unknown_tenant_is_401(unsigned_default_tenant, submit):
    response = submit(make_pcs(), tenant="nobody")
    assert response.status_code == 401
    assert response.json()["code"] == "unknown_tenant"


def test_a_disabled_tenant_is_401(make_tenant, submit):
    make_tenant("paused", sign_alg="none", enabled=False)
    response = submit(make_pcs(), tenant="paused")
    assert response.status_code == 401
    assert response.json()["code"] == "tenant_disabled"


def test_a_liar_is_escalated_with_202_and_the_reason(hmac_default_tenant, submit):
    pcs = make_pcs()
    pcs["D_hat"] = 1.4
    response = submit(signed(pcs))
    assert response.status_code == 202
    assert response.json()["decision"] == "escalate"
    assert response.json()["reasons"][0]["code"] == "D_hat_tolerance"


def test_unsigned_submissions_are_accepted_when_signing_is_off(unsigned_default_tenant, submit):
    assert submit(make_pcs()).status_code == 200


def test_the_accept_path_makes_one_query_after_warm_up(
    hmac_default_tenant, submit, django_assert_num_queries, monkeypatch
):
    # Not drawn for the audit sample (that adds a review item): the draw is random, the claim is not.
    monkeypatch.setattr(services, "random", SimpleNamespace(random=lambda: 0.5))
    submit(signed(make_pcs()))  # loads tenant, keys and params into the process
    with django_assert_num_queries(1):
        assert submit(signed(make_pcs())).status_code == 200


def test_a_replay_is_answered_with_one_query(hmac_default_tenant, submit, django_assert_num_queries):
    pcs = signed(make_pcs())
    first = submit(pcs).json()
    with django_assert_num_queries(1):  # the insert that loses also reads the stored answer
        again = submit(pcs)
    assert again.status_code == 200
    assert again.json() == {**first, "dedup": True}


def test_other_methods_on_submit_get_drfs_answers(client):
    """A POST skips DRF's dispatch; anything else still gets DRF's 405 and OPTIONS, in JSON."""
    refused = client.get("/v1/pcs/submit")
    assert refused.status_code == 405
    assert refused.json() == {"detail": 'Method "GET" not allowed.'}
    assert refused["Allow"] == "POST, OPTIONS"
    options = client.options("/v1/pcs/submit")
    assert options.status_code == 200 and options["Allow"] == "POST, OPTIONS"


def test_a_post_answer_says_which_methods_the_endpoint_allows(hmac_default_tenant, submit):
    response = submit(signed(make_pcs()))
    assert response.status_code == 200 and response["Allow"] == "POST, OPTIONS"
    assert response["Content-Type"] == "application/json"


def test_the_openapi_schema_still_describes_submit(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    post = schema["paths"]["/v1/pcs/submit"]["post"]
    assert post["operationId"] == "pcs_submit"
    assert {"200", "202", "400", "401", "403", "409", "413", "415", "429", "503"} <= set(post["responses"])
    request = post["requestBody"]["content"]["application/json"]
    assert request["schema"]["required"]
    assert {example["value"]["version"] for example in request["examples"].values()} == {"0.1", "0.2"}
    assert post["responses"]["403"]["content"]["application/json"]["examples"]


@pytest.mark.parametrize("escape", [r"\u0000", r"\ud800"])
def test_a_string_the_database_cannot_store_is_a_400_and_nothing_is_stored(hmac_default_tenant, submit, escape):
    body = json.dumps(signed(make_pcs()))[:-1] + f', "note": "a{escape}b"}}'
    response = submit(body)
    assert response.status_code == 400
    assert "note: a string holds U+0000 or an unpaired surrogate" in response.json()["non_field_errors"][0]
    assert not PcsRecord.objects.exists()


def test_a_chunked_body_on_a_server_that_cannot_read_one_is_411(hmac_default_tenant, rf):
    """The development server hands Django the raw stream: a chunked body is refused, not taken for empty."""
    request = rf.post("/v1/pcs/submit", data=b"{}", content_type="application/json")
    del request.META["CONTENT_LENGTH"]
    request.META["HTTP_TRANSFER_ENCODING"] = "chunked"
    response = SubmitView.as_view()(request)
    assert response.status_code == 411
    assert json.loads(response.content)["code"] == "length_required"
    assert not PcsRecord.objects.exists()


@pytest.mark.parametrize("length", ["\u00b2", "\u0663", "-1", "1e3"])
def test_a_content_length_that_is_not_ascii_digits_is_not_a_500(unsigned_default_tenant, rf, length):
    # "²".isdigit() is true and int("²") raises: a server that passes the header on unchecked got a 500.
    request = rf.post("/v1/pcs/submit", data=b"{}", content_type="application/json")
    request.META["CONTENT_LENGTH"] = length
    response = SubmitView.as_view()(request)
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert not PcsRecord.objects.exists()


def test_errors_django_raises_before_any_view_are_json_on_the_api_and_pages_elsewhere(client, unsigned_default_tenant):
    wrong_host = client.post("/v1/pcs/submit", b"{}", content_type="application/json", HTTP_HOST="evil.example")
    assert wrong_host.status_code == 400
    assert wrong_host.json() == {"detail": "this service does not answer to the host 'evil.example'",
                                 "code": "disallowed_host"}  # fmt: skip
    unknown = client.get("/v1/pcs/submit/extra")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "no API endpoint at /v1/pcs/submit/extra", "code": "not_found"}
    page = client.get("/review/nowhere/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    assert not PcsRecord.objects.exists()


def test_an_internal_error_on_the_api_is_json_too(rf):
    from flk_site.errors import server_error

    api = server_error(rf.get("/v1/pcs/" + "a" * 64))
    assert api.status_code == 500 and json.loads(api.content)["code"] == "server_error"
    page = server_error(rf.get("/review/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("depth", [40, 5_000])
def test_a_body_nested_too_deep_is_a_400_and_nothing_is_stored(hmac_default_tenant, submit, depth):
    body = json.dumps(signed(make_pcs()))[:-1] + ', "note": ' + '{"a":' * depth + "1" + "}" * depth + "}"
    response = submit(body)
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["body nests objects and arrays more than 32 levels deep"]}
    assert not PcsRecord.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_value_the_database_refuses_is_a_400_without_the_body_in_the_log(hmac_default_tenant, submit, caplog):
    """1e400 in a field the 0.1 schema does not check is infinity to Python and not JSON to PostgreSQL."""
    body = json.dumps(signed(make_pcs(version="0.1")))[:-1] + ', "note": 1e400, "label": "body-marker"}'
    response = submit(body)
    assert response.status_code == 400 and response.json()["code"] == "pcs_unstorable"
    assert not PcsRecord.objects.exists()
    assert "pcs_unstorable" in caplog.text and "body-marker" not in caplog.text


@pytest.mark.parametrize("value", ["1e400", "-1e400", "NaN", "Infinity"])
def test_under_0_2_a_number_with_no_json_form_is_named_at_any_depth(hmac_default_tenant, submit, value):
    # Every field of a 0.2 PCS is signed, and the signed form is JSON: such a value could never verify.
    body = json.dumps(signed(make_pcs()))[:-1] + f', "note": {{"deep": [1, {value}]}}}}'
    response = submit(body)
    assert response.status_code == 400
    assert response.json() == {"note": ["holds NaN or an infinity (at any depth), which a 0.2 PCS cannot sign"]}
    assert not PcsRecord.objects.exists()
