"""HTTP views of the ingest API: thin wrappers that call one service and render its Answer."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from agent_client.schema import PCS_JSON_SCHEMA
from ingest.batch import job_status, submit_batch
from ingest.client_address import client_address
from ingest.openapi import (
    ACCEPTED_EXAMPLE,
    BAD_REQUEST,
    BATCH,
    BATCH_QUEUED,
    ERROR,
    ESCALATED_EXAMPLE,
    OUTCOME,
    PCS_V0_1_EXAMPLE,
    PCS_V0_2_EXAMPLE,
    VERDICT,
)
from ingest.services import Answer, error, get_outcome, submit_pcs

_PCS_ID = re.compile(r"[0-9a-f]{64}")
TENANT_PARAMETER = OpenApiParameter(
    "X-Tenant-Id", str, OpenApiParameter.HEADER, required=False,
    description="The tenant, 1–64 characters of [A-Za-z0-9_.-]; `default` when absent.",
)  # fmt: skip
AUTHORIZATION_PARAMETER = OpenApiParameter(
    "Authorization", str, OpenApiParameter.HEADER, required=False,
    description="`Bearer <API key>`: one of the tenant's API keys.",
)  # fmt: skip
PREFER_PARAMETER = OpenApiParameter(
    "Prefer", str, OpenApiParameter.HEADER, required=False,
    description="`respond-async`: 202 with a status URL once the batch is durable; a worker judges its PCS.",
)  # fmt: skip
QUEUED_HEADERS = [
    OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[202], description="the status URL"),
    OpenApiParameter("Preference-Applied", str, OpenApiParameter.HEADER, response=[202],
                     description="`respond-async`"),
]  # fmt: skip
_SUBMIT_ALLOW = "POST, OPTIONS"


def render(answer: Answer) -> HttpResponse:
    response = HttpResponse(
        json.dumps(answer.body, separators=(",", ":"), ensure_ascii=False),
        status=answer.status,
        content_type="application/json",
    )
    for name, value in answer.headers.items():
        response[name] = value
    return response


class SubmitView(APIView):
    """Reads the raw body itself: the WAL must hold the bytes as sent, and parsing is the schema's job.

    It stays an APIView so that the OpenAPI schema describes it, but a POST does not go through DRF's
    dispatch: the view uses none of what that adds (a Request wrapper, authentication and permission
    classes, of which there are none, content negotiation, a renderer), and on the busiest endpoint that
    machinery costs about a tenth of a request's CPU. Other methods (OPTIONS, a 405) still go through DRF.
    """

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.method != "POST":
            return super().dispatch(request, *args, **kwargs)
        response = self.post(request)
        response["Allow"] = _SUBMIT_ALLOW  # what DRF's dispatch adds to every response
        return response

    @extend_schema(
        operation_id="pcs_submit",
        summary="Submit a PCS for verification",
        description=(
            "Takes PCS version 0.2, whose signature covers the whole PCS but `sig`, and 0.1, whose signature "
            "covers the eight fields pcs_id, merkle_root, epoch, shard_id, D_hat, coh_star, r, budget (the "
            "others, ft.degraded, N_j, scales and regime among them, are unauthenticated under 0.1). "
            "200 when accepted, 202 when escalated or rejected; a replay of the same PCS returns the "
            "stored answer with `dedup: true` (0.2: the same content, every field but sig, attempt and sent_at; "
            "0.1: the same signed subset). 400 field errors, 401 signature or tenant, 403 a version older than "
            "the tenant's minimum (`pcs_version_<minimum>_required`), 409 same pcs_id for a different PCS, 413 "
            "body too large, 415 not JSON, 429 rate limited, 503 retry later (`Retry-After`)."
        ),
        parameters=[TENANT_PARAMETER],
        request={"application/json": PCS_JSON_SCHEMA},
        responses={
            200: OpenApiResponse(VERDICT, description="accepted"),
            202: OpenApiResponse(VERDICT, description="escalated or rejected"),
            400: OpenApiResponse(BAD_REQUEST, description="field errors, DRF format"),
            401: OpenApiResponse(ERROR, description="unknown tenant or bad signature"),
            403: OpenApiResponse(ERROR, description="PCS version older than the tenant's minimum"),
            409: OpenApiResponse(ERROR, description="pcs_id reused for a different PCS (content, 0.1 "
                                 "signed subset, or version)"),
            411: OpenApiResponse(ERROR, description="chunked body where the server cannot read one"),
            413: OpenApiResponse(ERROR, description="body too large"),
            415: OpenApiResponse(ERROR, description="not JSON"),
            429: OpenApiResponse(ERROR, description="rate limited: retry after `Retry-After` seconds"),
            503: OpenApiResponse(ERROR, description="retry after `Retry-After` seconds"),
        },
        examples=[OpenApiExample("PCS version 0.2", value=PCS_V0_2_EXAMPLE, request_only=True,
                                 description="signs every field but sig (HMAC key `testkey`)"),
                  OpenApiExample("PCS version 0.1", value=PCS_V0_1_EXAMPLE, request_only=True,
                                 description="signs pcs_id, merkle_root, epoch, shard_id, D_hat, coh_star, r, budget"),
                  OpenApiExample("accepted", value=ACCEPTED_EXAMPLE, response_only=True, status_codes=["200"]),
                  OpenApiExample("escalated", value=ESCALATED_EXAMPLE, response_only=True, status_codes=["202"]),
                  OpenApiExample("401", value={"detail": "...", "code": "signature_invalid", "key_ids": ["k1"]},
                                 response_only=True, status_codes=["401"]),
                  OpenApiExample("403", value={"detail": "...", "code": "pcs_version_0.2_required",
                                               "version": "0.1", "required_version": "0.2", "pcs_id": "e3e8..."},
                                 response_only=True, status_codes=["403"])],
    )  # fmt: skip
    def post(self, request: HttpRequest) -> HttpResponse:
        return self.respond(request, settings.FLK_MAX_BODY_BYTES, submit_pcs)

    @staticmethod
    def respond(request: HttpRequest, limit: int, service: Callable[[str | None, str | None, bytes, str], Answer]):
        """Read the body (at most ``limit`` bytes) and render what ``service`` answers for it."""
        body = read_body(request, limit)
        if isinstance(body, Answer):
            return render(body)
        answer = service(request.META.get("HTTP_X_TENANT_ID"), request.META.get("CONTENT_TYPE"), body,
                         client_address(request))  # fmt: skip
        request.flk_answer = answer  # pcs_id and tenant for the request log line (ingest.requestlog)
        return render(answer)


def read_body(request: HttpRequest, limit: int) -> bytes | Answer:
    """The raw request body, or the refusal: 413 above ``limit`` bytes, 411 or 400 for a chunked body that
    cannot be read, 400 for a body shorter than its Content-Length."""
    too_large = error(413, "body_too_large", f"body exceeds {limit} bytes")
    # Refuse on the declared length without reading; read at most one byte past the limit otherwise.
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isascii() and length.isdigit() and int(length) > limit:  # "²".isdigit(), but int("²") raises
        return too_large
    if not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        # Django reads no further than Content-Length, so a chunked body would look empty. A server that
        # decodes chunked bodies and ends the stream after them (gunicorn) says so in wsgi.input_terminated.
        if not request.META.get("wsgi.input_terminated"):
            return error(411, "length_required", "this server needs a Content-Length header")
        try:
            body = request.META["wsgi.input"].read(limit + 1)
        except Exception as exc:  # each server raises its own errors for a malformed chunk
            detail = f"the chunked body could not be read ({type(exc).__name__}); nothing was stored"
            return error(400, "malformed_chunked_body", detail)
    else:
        body = request.read(limit + 1)
        declared = int(length) if length.isascii() and length.isdigit() else 0
        if len(body) < declared:
            # The client stopped sending (or closed) before the end: the bytes so far may parse, and even verify,
            # but they are not the request that was sent, so nothing of them is kept.
            detail = (
                f"the body ended after {len(body)} of the {declared} bytes of its Content-Length; nothing was stored"
            )
            return error(400, "incomplete_body", detail)
    if len(body) > limit:
        return too_large
    return body


class BatchView(SubmitView):
    """POST /v1/pcs/batch: a POST bypasses DRF's dispatch, as ``SubmitView``'s does."""

    @extend_schema(
        operation_id="pcs_batch",
        summary="Submit many PCS of one tenant at once",
        description=(
            "A JSON array of PCS (`application/json`) or one PCS a line (`application/x-ndjson`), at most "
            "FLK_BATCH_MAX_ITEMS (default 500) in at most FLK_BATCH_MAX_BYTES. 200 with `results`: one entry per "
            "PCS, in order, with the status and body `/v1/pcs/submit` would give it alone (a replay within the "
            "batch or of a stored PCS has `dedup: true`; a conflict is its 409; a bad PCS its 400 or 401, which "
            "does not fail the others). The whole body is in the WAL before any PCS is read; the tenant's rate "
            "limit counts PCS. For the whole batch: 400 a body that is not an array, 401 unknown tenant, 413 too "
            "many PCS or bytes, 415 another media type, 429 the address's limit, 503 WAL or database "
            "unavailable (`Retry-After`; the batch is kept for replay: send it again)."
        ),
        parameters=[TENANT_PARAMETER, PREFER_PARAMETER, *QUEUED_HEADERS],
        request={"application/json": {"type": "array", "items": PCS_JSON_SCHEMA},
                 "application/x-ndjson": {"type": "string", "description": "one PCS JSON object a line"}},
        responses={
            200: OpenApiResponse(BATCH, description="one answer per PCS, in order"),
            202: OpenApiResponse(BATCH_QUEUED, description="Prefer: respond-async: queued, answers at status_url"),
            400: OpenApiResponse(BAD_REQUEST, description="not a JSON array"),
            401: OpenApiResponse(ERROR, description="unknown or disabled tenant"),
            411: OpenApiResponse(ERROR, description="chunked body where the server cannot read one"),
            413: OpenApiResponse(ERROR, description="more PCS or bytes than the limits"),
            415: OpenApiResponse(ERROR, description="another media type"),
            429: OpenApiResponse(ERROR, description="the address's limit: retry after `Retry-After` seconds"),
            503: OpenApiResponse(ERROR, description="retry after `Retry-After` seconds"),
        },
        examples=[OpenApiExample("two PCS", value=[PCS_V0_2_EXAMPLE, PCS_V0_1_EXAMPLE], request_only=True)],
    )  # fmt: skip
    def post(self, request: HttpRequest) -> HttpResponse:
        prefer = request.META.get("HTTP_PREFER", "").lower()
        respond_async = "respond-async" in (p.strip().split("=", 1)[0] for p in prefer.replace(";", ",").split(","))
        return self.respond(request, settings.FLK_BATCH_MAX_BYTES,
                            lambda *args: submit_batch(*args, respond_async=respond_async))  # fmt: skip


class BatchStatusView(APIView):
    @extend_schema(
        operation_id="pcs_batch_status",
        summary="The answers of a batch sent with Prefer: respond-async",
        description=(
            "With the same `X-Tenant-Id` as the batch: `status` `pending` until a worker has judged every PCS, then "
            "`done` with `results` as the synchronous answer gives them. The URL's id is random: whoever holds it "
            "with the tenant's name may read the answers. 404 for an unknown id or another tenant."
        ),
        parameters=[TENANT_PARAMETER],
        responses={200: OpenApiResponse({"type": "object", "properties": {
            "id": {"type": "string"}, "status": {"type": "string", "enum": ["pending", "done"]},
            "items": {"type": "integer"}, "results": BATCH["properties"]["results"]}}),
            404: OpenApiResponse(ERROR),
            503: OpenApiResponse(ERROR, description="database unavailable: retry after `Retry-After` seconds")},
    )  # fmt: skip
    def get(self, request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
        return render(job_status(request.META.get("HTTP_X_TENANT_ID"), str(job_id)))


class OutcomeView(APIView):
    @extend_schema(
        operation_id="pcs_outcome",
        summary="The stored outcome of a PCS",
        description=(
            "Needs one of the tenant's API keys (admin console, or `manage.py create_api_key`) as "
            "`Authorization: Bearer <key>`, unless an admin made the tenant's outcomes readable without one. "
            "Unknown tenant, missing key and wrong key get the same 401."
        ),
        parameters=[TENANT_PARAMETER, AUTHORIZATION_PARAMETER],
        responses={
            200: OpenApiResponse(OUTCOME, description="the stored verdict, its status and its label"),
            400: OpenApiResponse(BAD_REQUEST, description="a malformed X-Tenant-Id"),
            401: OpenApiResponse(ERROR, description="no valid API key of the tenant (one answer, any cause)"),
            404: OpenApiResponse(ERROR, description="no such PCS for this tenant"),
            503: OpenApiResponse(ERROR, description="database unavailable: retry after `Retry-After` seconds"),
        },
    )
    def get(self, request: HttpRequest, pcs_id: str) -> HttpResponse:
        if not _PCS_ID.fullmatch(pcs_id):
            return render(error(404, "not_found", "pcs_id must be 64 lowercase hexadecimal characters"))
        return render(get_outcome(request.META.get("HTTP_X_TENANT_ID"), pcs_id, request.META.get("HTTP_AUTHORIZATION")))
