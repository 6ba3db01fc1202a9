"""Parsing and validating a PCS body: the wire schema, with errors shaped like DRF's field errors.

``parse_pcs`` turns request bytes into a validated ``dict`` or raises ``PcsInvalid`` whose ``errors`` maps
each offending field to a list of messages (``{"epoch": ["must be ≥ 0"]}``); problems with the body as a
whole go under ``non_field_errors``. Every problem is reported, not only the first. Unknown fields are
kept but not checked: the server ignores them (under 0.2 they are signed like every other field, so they
must at least have a signed form: no NaN or infinity anywhere). Numbers are returned as they were written
(``1`` stays an integer): a 0.2 signature covers ``1`` and ``1.0`` as different text.

Hand-written rather than a serializer framework because this runs on every request and must match
the agent's understanding of the contract exactly; the JSON Schema below documents the same rules.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from agent_client import SCHEMA_NAME
from agent_client.canonical import PROTOCOLS, V0_2, pcs_id_for, protocol_of
from agent_client.regime import REGIMES

KNOWN_MAJOR_VERSIONS = frozenset({0})
MAX_SCALES = 64
MAX_INT64 = 2**63 - 1
NON_FIELD = "non_field_errors"
MAX_NESTING = 32  # objects and arrays inside each other; a PCS itself needs 3 (the PCS, ft, its fallbacks)
_TOO_DEEP = f"body nests objects and arrays more than {MAX_NESTING} levels deep"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})(\.(0|[1-9][0-9]{0,5}))?")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]{1,128}")
_RFC3339 = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[Tt ](?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})(\.\d{1,9})?"
    r"([Zz]|[+-](?P<oh>\d{2}):(?P<om>\d{2}))",
    re.ASCII,
)

REQUIRED = (
    "pcs_id", "schema", "version", "shard_id", "epoch", "scales", "N_j",
    "coh_star", "D_hat", "r", "regime", "budget", "merkle_root",
)  # fmt: skip


class PcsInvalid(ValueError):
    """The body is not a valid PCS; ``errors`` is a DRF-style mapping of field to messages."""

    def __init__(self, errors: dict[str, Any]):
        super().__init__("invalid PCS")
        self.errors = errors


class _NonFinite:
    """Placeholder for NaN/Infinity literals so they are reported per field, not as bad JSON."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _nests_deeper_than(obj: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` deep in ``obj`` (walked without recursion)."""
    pending = [(obj, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        inner = value.values() if isinstance(value, dict) else value
        pending.extend((item, depth + 1) for item in inner if isinstance(item, (dict, list)))
    return False


def loads_strict(body: bytes | str) -> Any:
    """json.loads that refuses duplicate keys and keeps NaN/Infinity as markers for per-field errors."""
    return json.loads(body, object_pairs_hook=_object_without_duplicates, parse_constant=_NonFinite)


def parse_pcs(body: bytes | str) -> dict[str, Any]:
    """Decode and validate a PCS body; raise ``PcsInvalid`` with every problem found."""
    try:
        obj = loads_strict(body)
    except _DuplicateKey as exc:
        raise PcsInvalid({NON_FIELD: [f"duplicate JSON key {str(exc)!r}"]}) from None
    except RecursionError:  # the parser's own guard, near a thousand levels
        raise PcsInvalid({NON_FIELD: [_TOO_DEEP]}) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PcsInvalid({NON_FIELD: [f"body is not valid JSON: {exc}"]}) from None
    if not isinstance(obj, dict):
        raise PcsInvalid({NON_FIELD: [f"body must be a JSON object, got {_json_type(obj)}"]})
    # Every level opens with a bracket or a brace, so a body with few of them needs no walk. A deeper body
    # could be stored, but not shown or replayed where less of the stack is free.
    opened = body.count("[") + body.count("{") if isinstance(body, str) else body.count(b"[") + body.count(b"{")
    if opened > MAX_NESTING and _nests_deeper_than(obj, MAX_NESTING):
        raise PcsInvalid({NON_FIELD: [_TOO_DEEP]})
    # Only an escape (\u0000, \ud800) or a body that is not plain ASCII can carry such a string.
    if ("\\u" in body if isinstance(body, str) else b"\\u" in body) or not body.isascii():
        where = _unstorable_text(obj, "")
        if where is not None:  # the path itself may hold the character: it is shown escaped
            where = where.encode("unicode_escape").decode("ascii")
            raise PcsInvalid({NON_FIELD: [f"{where or 'the body'}: a string holds U+0000 or an unpaired "
                                          "surrogate (\\ud800-\\udfff), which cannot be stored"]})  # fmt: skip
    return validate_pcs(obj)


def _unstorable_text(value: Any, path: str) -> str | None:
    """The path of the first key or string value JSON allows but UTF-8 text cannot hold, or None.

    JSON escapes can spell U+0000 and lone UTF-16 surrogates; neither is valid UTF-8 text, and a
    database's JSON column refuses both, so such a PCS could be acknowledged but never stored.
    """
    if isinstance(value, str):
        return path if "\x00" in value or not _encodes_as_utf8(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            if "\x00" in key or not _encodes_as_utf8(key):
                return inner
            found = _unstorable_text(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable_text(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _encodes_as_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, _NonFinite)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_error(value: Any) -> str | None:
    if isinstance(value, _NonFinite) or (isinstance(value, float) and not math.isfinite(value)):
        return "must be a finite number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, got {_json_type(value)}"
    if isinstance(value, int) and abs(value) > 2**53:
        return "is too large"
    return None


def validate_pcs(obj: dict[str, Any]) -> dict[str, Any]:
    """Validate a decoded PCS object and return a copy of it, values as they were written."""
    errors: dict[str, Any] = {}

    def err(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    for name in REQUIRED:
        if name not in obj:
            err(name, "This field is required.")

    pcs = dict(obj)

    if "schema" in obj and obj["schema"] != SCHEMA_NAME:
        err("schema", f"must be {SCHEMA_NAME!r}")

    if "version" in obj:
        v = obj["version"]
        m = _VERSION.fullmatch(v) if isinstance(v, str) else None
        if m is None:
            err("version", "must be a string MAJOR.MINOR or MAJOR.MINOR.PATCH")
        elif int(m.group(1)) not in KNOWN_MAJOR_VERSIONS:
            err("version", f"unknown major version {m.group(1)}; this server speaks 0.x")
        elif protocol_of(v) is None:
            err("version", f"unsupported version {v}; this server speaks {' and '.join(PROTOCOLS)}")

    if "shard_id" in obj:
        s = obj["shard_id"]
        if not isinstance(s, str) or not _PRINTABLE_ASCII.fullmatch(s):
            err("shard_id", "must be 1–128 printable ASCII characters")

    if "merkle_root" in obj:
        mr = obj["merkle_root"]
        if not isinstance(mr, str) or not _HEX64.fullmatch(mr):
            err("merkle_root", "must be 64 lowercase hexadecimal characters (a SHA-256)")

    if "epoch" in obj:
        e = obj["epoch"]
        if not _is_int(e):
            err("epoch", f"must be an integer, got {_json_type(e)}")
        elif e < 0:
            err("epoch", "must be ≥ 0")
        elif e > MAX_INT64:
            err("epoch", "is too large")

    _validate_optional_ints(obj, err)

    if "pcs_id" in obj:
        pid = obj["pcs_id"]
        if not isinstance(pid, str) or not _HEX64.fullmatch(pid):
            err("pcs_id", "must be 64 lowercase hexadecimal characters")
        elif not ({"merkle_root", "epoch", "shard_id"} & errors.keys()) and all(
            k in obj for k in ("merkle_root", "epoch", "shard_id")
        ):
            expected = pcs_id_for(obj["merkle_root"], obj["epoch"], obj["shard_id"])
            if pid != expected:
                err("pcs_id", "does not equal sha256(merkle_root|epoch|shard_id)")

    for name in ("coh_star", "D_hat", "r", "budget"):
        if name in obj:
            problem = _number_error(obj[name])
            if problem:
                err(name, problem)
    for name in ("r", "budget"):
        if name in obj and name not in errors and not 0.0 <= obj[name] <= 1.0:
            err(name, "must be within [0, 1]")

    if "regime" in obj and obj["regime"] not in REGIMES:
        err("regime", f"must be one of {', '.join(REGIMES)}")

    _validate_scales(obj, err)

    if "v_star" in obj:
        vs = obj["v_star"]
        if not isinstance(vs, list) or len(vs) > 4096 or any(_number_error(x) for x in vs):
            err("v_star", "must be a list of at most 4096 finite numbers")

    if "sig" in obj and not isinstance(obj["sig"], str):
        err("sig", f"must be a base64 string, got {_json_type(obj['sig'])}")

    if "sent_at" in obj and not _is_rfc3339(obj["sent_at"]):
        err("sent_at", "must be an RFC 3339 timestamp string, e.g. 2026-11-24T10:00:00Z")

    if "ft" in obj:
        ft_errors = _ft_errors(obj["ft"])
        if ft_errors:
            errors["ft"] = ft_errors

    if protocol_of(obj.get("version")) == V0_2:
        # Every field is signed, and the signed form is JSON: a value it cannot write could never verify.
        for name, value in obj.items():
            if name not in errors and _holds_non_finite(value):
                err(name, "holds NaN or an infinity (at any depth), which a 0.2 PCS cannot sign")
    else:
        # Unsigned fields of 0.1 are stored as they came, and a NaN or Infinity literal has no JSON form to store.
        for name, value in obj.items():
            if name not in errors and _holds_non_finite(value, literals_only=True):
                err(name, "holds NaN or Infinity (at any depth), which JSON has no value for")

    if errors:
        raise PcsInvalid(errors)
    return pcs


def _holds_non_finite(value: Any, literals_only: bool = False) -> bool:
    """Whether a NaN or an infinity is in ``value`` at any depth (the schema caps the depth at 32); with
    ``literals_only``, only the literals NaN, Infinity and -Infinity count, not a number too large (1e400)."""
    if isinstance(value, _NonFinite):
        return True
    if isinstance(value, float):
        return not literals_only and not math.isfinite(value)
    if isinstance(value, dict):
        return any(_holds_non_finite(item, literals_only) for item in value.values())
    if isinstance(value, list):
        return any(_holds_non_finite(item, literals_only) for item in value)
    return False


def _validate_optional_ints(obj: dict[str, Any], err: Any) -> None:
    for name, minimum in (("attempt", 1), ("seed", 0)):
        if name in obj:
            v = obj[name]
            if not _is_int(v):
                err(name, f"must be an integer, got {_json_type(v)}")
            elif not minimum <= v <= MAX_INT64:
                err(name, f"must be between {minimum} and {MAX_INT64}")


def _validate_scales(obj: dict[str, Any], err: Any) -> None:
    scales = obj.get("scales")
    scales_ok = False
    if "scales" in obj:
        if not isinstance(scales, list):
            err("scales", f"must be a list of integers, got {_json_type(scales)}")
        elif not 2 <= len(scales) <= MAX_SCALES:
            err("scales", f"must hold between 2 and {MAX_SCALES} scales")
        elif not all(_is_int(s) for s in scales):
            err("scales", "must all be integers")
        elif any(s <= 0 for s in scales):
            err("scales", "must all be positive")
        elif any(s > 2**53 for s in scales):
            err("scales", "is too large")
        elif len(set(scales)) != len(scales):
            err("scales", "must not repeat a scale")
        else:
            scales_ok = True

    if "N_j" in obj:
        nj = obj["N_j"]
        if not isinstance(nj, dict):
            err("N_j", f"must be an object keyed by scale, got {_json_type(nj)}")
            return
        bad_values = sorted(k for k, v in nj.items() if not _is_int(v) or not 0 < v <= 2**53)
        if bad_values:
            err("N_j", f"values must be positive integers (keys {', '.join(bad_values)})")
        if scales_ok:
            expected = {str(s) for s in scales}
            if set(nj) != expected:
                missing = sorted(expected - set(nj), key=_scale_order)
                extra = sorted(set(nj) - expected, key=_scale_order)
                parts = []
                if missing:
                    parts.append(f"missing keys {', '.join(missing)}")
                if extra:
                    parts.append(f"unexpected keys {', '.join(extra)}")
                err("N_j", "keys must be the scales written as strings: " + "; ".join(parts))


def _is_rfc3339(value: Any) -> bool:
    """A full RFC 3339 date-time (date, time, offset or Z) that names a real instant."""
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return False
    year, month, day, hour, minute, second, offset_hours, offset_minutes = (
        int(part) if part else 0 for part in match.group("y", "mo", "d", "h", "mi", "s", "oh", "om")
    )
    try:
        datetime(year, month, day, hour, minute, min(second, 59))  # 60: a leap second, which RFC 3339 allows
    except ValueError:
        return False
    return second <= 60 and offset_hours <= 23 and offset_minutes <= 59


def _scale_order(key: str) -> tuple[int, str]:
    # isdigit() alone holds for "²" and other digits int() refuses: only ASCII digits are a scale's number.
    return (int(key), key) if key.isascii() and key.isdigit() else (2**63, key)


def _ft_errors(ft: Any) -> dict[str, list[str]] | list[str]:
    if not isinstance(ft, dict):
        return [f"must be an object, got {_json_type(ft)}"]
    errors: dict[str, list[str]] = {}
    if "degraded" in ft and not isinstance(ft["degraded"], bool):
        errors["degraded"] = ["must be a boolean"]
    for name in ("outbox_seq", "clock_skew_ms"):
        if name in ft and (not _is_int(ft[name]) or abs(ft[name]) > MAX_INT64):
            errors[name] = ["must be an integer"]
    if "outbox_seq" in ft and "outbox_seq" not in errors and ft["outbox_seq"] < 0:
        errors["outbox_seq"] = ["must be ≥ 0"]
    fb = ft.get("fallbacks", [])
    if not isinstance(fb, list) or not all(isinstance(x, str) for x in fb):
        errors["fallbacks"] = ["must be a list of strings"]
    return errors


PCS_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A Proof-of-Computation Summary. Unknown fields are ignored by the verification; under 0.2 "
                   "they are signed and stored like the others.",
    "required": list(REQUIRED),
    "properties": {
        "pcs_id": {"type": "string", "pattern": "^[0-9a-f]{64}$",
                   "description": "sha256_hex(merkle_root + '|' + epoch + '|' + shard_id)"},
        "schema": {"type": "string", "enum": [SCHEMA_NAME]},
        "version": {"type": "string", "pattern": r"^0\.[12](\.(0|[1-9][0-9]{0,5}))?$", "example": "0.2",
                    "description": "the protocol: 0.2 signs the whole PCS but sig, 0.1 the eight fields pcs_id, "
                                   "merkle_root, epoch, shard_id, D_hat, coh_star, r, budget (a third number, "
                                   "0.2.1, is allowed and speaks its MAJOR.MINOR)"},
        "shard_id": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[ -~]+$"},
        "epoch": {"type": "integer", "minimum": 0},
        "attempt": {"type": "integer", "minimum": 1},
        "sent_at": {"type": "string", "format": "date-time"},
        "seed": {"type": "integer", "minimum": 0},
        "scales": {"type": "array", "items": {"type": "integer", "minimum": 1},
                   "minItems": 2, "maxItems": MAX_SCALES, "uniqueItems": True},
        "N_j": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1},
                "description": "box counts keyed by the scale written as a string"},
        "coh_star": {"type": "number"},
        "v_star": {"type": "array", "items": {"type": "number"}},
        "D_hat": {"type": "number"},
        "r": {"type": "number", "minimum": 0, "maximum": 1},
        "regime": {"type": "string", "enum": list(REGIMES)},
        "budget": {"type": "number", "minimum": 0, "maximum": 1},
        "merkle_root": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "sig": {"type": "string", "description": "base64 HMAC-SHA256 or Ed25519 signature of the SHA-256 of the "
                "canonical payload (0.2: every other field; 0.1: the eight signed fields)"},
        "ft": {"type": "object", "properties": {
            "outbox_seq": {"type": "integer", "minimum": 0},
            "degraded": {"type": "boolean"},
            "fallbacks": {"type": "array", "items": {"type": "string"}},
            "clock_skew_ms": {"type": "integer"},
        }},
    },
}  # fmt: skip
