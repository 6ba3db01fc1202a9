"""The OpenAPI description of the API's bodies: every field of every answer, and request examples that work.

Written as JSON Schema 2020-12, the dialect of OpenAPI 3.1 (``"type": ["number", "null"]`` for a value that
may be null). ``ingest/tests/test_api_schema_matches_answers.py`` validates the service's real answers, read
over HTTP, against ``/api/schema/``; the answer objects refuse properties they do not list, so a field added
to an answer without its description here fails that test.
"""

from __future__ import annotations

from typing import Any

from agent_client.regime import REGIMES

REASON: dict[str, Any] = {
    "type": "object",
    "description": "a check the PCS failed",
    "required": ["code", "detail"],
    "properties": {
        "code": {"type": "string", "description": "stable name of the check, e.g. `D_hat_tolerance`, "
                 "`budget_deviation`, `conformal_p_value`"},
        "detail": {"type": "string", "description": "the values compared, in words"},
    },
    "additionalProperties": False,
}  # fmt: skip

CONFORMAL: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "the conformal step, once the tenant's calibration (or the global fallback) is ready; null "
    "before, when the parameter checks alone decide",
    "required": ["score", "threshold", "p_value", "n", "snapshot_id", "source", "delta", "reject_enabled"],
    "properties": {
        "score": {"type": "number", "description": "the nonconformity score of this PCS"},
        "threshold": {"type": ["number", "null"], "description": "the calibration quantile at delta; null when "
                      "the set is too small for a finite one"},
        "p_value": {"type": "number", "minimum": 0, "maximum": 1},
        "n": {"type": "integer", "minimum": 0, "description": "scores in the calibration set"},
        "snapshot_id": {"type": "integer", "description": "the calibration snapshot that decided"},
        "source": {"type": "string", "enum": ["own", "global"], "description": "the tenant's own set or the "
                   "global fallback"},
        "delta": {"type": "number", "description": "the level: escalate at p-value ≤ delta"},
        "reject_enabled": {"type": "boolean", "description": "whether n is large enough for a p-value ≤ "
                           "reject_delta (otherwise such PCS are escalated)"},
    },
    "additionalProperties": False,
}  # fmt: skip

_VERDICT_PROPERTIES: dict[str, Any] = {
    "pcs_id": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "accepted": {"type": "boolean", "description": "true exactly when the status is 200"},
    "decision": {"type": "string", "enum": ["accept", "escalate", "reject"]},
    "reasons": {"type": "array", "items": REASON, "description": "the failed checks; empty when accepted"},
    "recomputed": {
        "type": "object",
        "description": "the values the verifier computed from the PCS's own data",
        "required": ["D_hat", "regime", "budget"],
        "properties": {
            "D_hat": {"type": "number", "description": "Theil–Sen slope of log N_j over log scales"},
            "regime": {"type": "string", "enum": list(REGIMES)},
            "budget": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "additionalProperties": False,
    },
    "params_version": {"type": "integer", "description": "the VerifyParams version that decided"},
    "score": {"type": ["number", "null"], "description": "the nonconformity score under the active formula "
              "(null when it could not be computed)"},
    "conformal": CONFORMAL,
    "dedup": {"type": "boolean", "description": "true when this answer is a replay of the stored one"},
}  # fmt: skip

VERDICT: dict[str, Any] = {
    "type": "object",
    "description": "the verdict on one PCS (200 accepted, 202 escalated or rejected)",
    "required": list(_VERDICT_PROPERTIES),
    "properties": _VERDICT_PROPERTIES,
    "additionalProperties": False,
}

LABEL: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "the review label, once a reviewer (or an import) gave one; null before",
    "required": ["label", "provenance", "labelled_at"],
    "properties": {
        "label": {"type": "string", "enum": ["benign", "anomalous"]},
        "provenance": {"type": "string", "enum": ["audit", "escalation", "imported"]},
        "labelled_at": {"type": "string", "format": "date-time"},
    },
    "additionalProperties": False,
}

OUTCOME: dict[str, Any] = {
    "type": "object",
    "description": "the stored verdict as it was answered, with the status it was answered with and its label",
    "required": [*_VERDICT_PROPERTIES, "status_code", "label"],
    "properties": {
        **_VERDICT_PROPERTIES,
        "status_code": {"type": "integer", "enum": [200, 202], "description": "the status of the first answer"},
        "label": LABEL,
    },
    "additionalProperties": False,
}

ERROR: dict[str, Any] = {
    "type": "object",
    "description": "an error: `code` is stable, `detail` says what to do in words",
    "required": ["detail", "code"],
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "e.g. `rate_limited`, `signature_invalid`, `unknown_tenant`, "
                 "`pcs_id_conflict`, `body_too_large`, `wal_full`, `database_unavailable`"},
        "key_ids": {"type": "array", "items": {"type": "string"}, "description": "401 signature errors: the key "
                    "ids tried (never a key)"},
        "pcs_id": {"type": "string", "description": "the PCS the error is about, when it was read"},
        "version": {"type": "string", "description": "403: the PCS's version"},
        "required_version": {"type": "string", "description": "403: the oldest version the tenant accepts"},
    },
    "additionalProperties": False,
}  # fmt: skip

FIELD_ERRORS: dict[str, Any] = {
    "type": "object",
    "description": "field errors in Django REST framework's format: each field (or `non_field_errors`, or the "
    "`X-Tenant-Id` header) with its messages; `ft` holds the errors of its own fields",
    "minProperties": 1,
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        ]
    },
}

BAD_REQUEST: dict[str, Any] = {
    "description": "field errors, or an error with a code (`pcs_unstorable`, `malformed_chunked_body`, `incomplete_body`, "
    "`disallowed_host`)",
    "anyOf": [FIELD_ERRORS, ERROR],
}

BATCH: dict[str, Any] = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "results": {
            "type": "array",
            "description": "one entry per PCS, in the order sent",
            "items": {
                "type": "object",
                "required": ["status", "body"],
                "properties": {
                    "status": {"type": "integer", "description": "the status `/v1/pcs/submit` would answer for "
                               "this PCS alone"},
                    "body": {"description": "the body it would answer: a verdict (200, 202) or an error",
                             "anyOf": [VERDICT, ERROR, FIELD_ERRORS]},
                    "retry_after": {"type": "integer", "description": "seconds, for a 429 or 503 item"},
                },
                "additionalProperties": False,
            },
        }
    },
    "additionalProperties": False,
}  # fmt: skip

BATCH_QUEUED: dict[str, Any] = {
    "type": "object",
    "description": "Prefer: respond-async: the batch is durable and queued; its answers are read at `status_url`",
    "required": ["id", "status", "items", "status_url"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["pending"]},
        "items": {"type": "integer", "minimum": 0, "description": "the PCS in the batch"},
        "status_url": {"type": "string", "description": "GET it with the same `X-Tenant-Id` (also in `Location`)"},
    },
    "additionalProperties": False,
}

# The first PCS of the 0.2 golden vectors, signed with HMAC key "testkey"; the 0.1 example is the same work's
# next epoch (its own pcs_id), so both can be tried in turn and each is accepted.
PCS_V0_2_EXAMPLE: dict[str, Any] = {
    "pcs_id": "e3e898d87fb1039b69e61313c2c318eda5e0cf9d0809e41b98f9f79ae9051ed7",
    "schema": "fractal-lba-kakeya", "version": "0.2",
    "shard_id": "shard-001", "epoch": 7, "attempt": 1, "sent_at": "2026-01-01T00:00:00Z", "seed": 42,
    "scales": [2, 4, 8, 16, 32], "N_j": {"2": 3, "4": 5, "8": 9, "16": 17, "32": 31},
    "coh_star": 0.73, "v_star": [0.12, 0.98, -0.05], "D_hat": 0.857365188, "r": 0.87,
    "regime": "sticky", "budget": 0.285,
    "merkle_root": "cf763a041c81ceef1578a6083f75c61bef2e0014f2a3e683a97fcfca5be7f19a",
    "sig": "3gShm3Vn90ttFxrQkWPv6fJPfFGRfP1i7cxq5DEraas=",
    "ft": {"outbox_seq": 1, "degraded": False, "fallbacks": [], "clock_skew_ms": 0},
}  # fmt: skip
PCS_V0_1_EXAMPLE: dict[str, Any] = {
    **PCS_V0_2_EXAMPLE,
    "version": "0.1",
    "epoch": 8,
    "pcs_id": "c84de4ec3347727bec29a1a29b9c93ba8d2ae6f15f669e18c0a7273e71c6b4fd",
    "sig": "1Y0PsYYjnU6sq9Dm3R7iZUXj7NiyuOrOgYlePookj2U=",
}

ACCEPTED_EXAMPLE: dict[str, Any] = {
    "pcs_id": PCS_V0_2_EXAMPLE["pcs_id"], "accepted": True, "decision": "accept", "reasons": [],
    "recomputed": {"D_hat": 0.857365188, "regime": "sticky", "budget": 0.285}, "params_version": 1,
    "score": 0.470783628, "conformal": None, "dedup": False,
}  # fmt: skip
ESCALATED_EXAMPLE: dict[str, Any] = {
    **ACCEPTED_EXAMPLE, "accepted": False, "decision": "escalate",
    "reasons": [{"code": "conformal_p_value", "detail": "score 0.470784 has conformal p-value 0.0298507 <= delta "
                 "0.05 against 200 benign scores"}],
    "conformal": {"score": 0.470783628, "threshold": 0.4, "p_value": 0.029850746, "n": 200, "snapshot_id": 12,
                  "source": "own", "delta": 0.05, "reject_enabled": True},
}  # fmt: skip
