"""pcs_id, the canonical signed payload, its digest and the content digest (DESIGN.md section 6).

These bytes are the wire contract: changing any of them breaks every deployed agent's signatures. Two
protocol versions are spoken, chosen by the PCS's own ``version`` field:

- **0.1** signs a fixed subset of eight fields (``SIGNED_FIELDS``). Everything else in the PCS, among it
  fields that decide the verdict (``ft.degraded``, ``N_j``, ``scales``, ``regime``), is unauthenticated.
- **0.2** signs the whole PCS except ``sig``, and two deliveries of one ``pcs_id`` are the same PCS exactly
  when their content digests (the same serialisation without ``sig``, ``attempt`` and ``sent_at``) are equal.

Changing ``version`` in a signed PCS changes which bytes its signature must cover, so a PCS moved from one
version to the other by someone in the path no longer verifies.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

SIGNED_FIELDS = ("pcs_id", "merkle_root", "epoch", "shard_id", "D_hat", "coh_star", "r", "budget")
FLOAT_FIELDS = ("D_hat", "coh_star", "r", "budget")
V0_1 = "0.1"
V0_2 = "0.2"
PROTOCOLS = (V0_1, V0_2)  # oldest first: a tenant's minimum is compared by this order
# Fields a 0.2 delivery may change between tries without being another PCS (they are still signed).
PER_DELIVERY_FIELDS = ("sig", "attempt", "sent_at")
_NINE_PLACES = Decimal("1e-9")
# Enough digits for any finite double to 9 decimals (the largest has 309 integer digits): quantize never
# runs out of precision, so no value the schema lets through makes rounding fail.
_ROUNDING_CONTEXT = decimal.Context(prec=400, rounding=ROUND_HALF_UP)
_MAJOR_MINOR = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))?")


def pcs_id_for(merkle_root: str, epoch: int, shard_id: str) -> str:
    """sha256_hex(merkle_root + "|" + str(epoch) + "|" + shard_id)."""
    return hashlib.sha256(f"{merkle_root}|{epoch}|{shard_id}".encode()).hexdigest()


def round9(x: float) -> float:
    """Round half-up (away from zero on ties) to 9 decimals, on the shortest decimal form of ``x``.

    Python's ``round`` works on the binary value, so 0.1234567895 would round down; the contract rounds
    the decimal text the agent wrote, which is what a reader of the JSON sees.
    """
    x = float(x)
    text = repr(x)
    point = text.find(".")
    if "e" not in text and point >= 0 and len(text) - point <= 10:
        return x  # at most 9 decimals already (most values: agents send them rounded): nothing to round
    return float(Decimal(text).quantize(_NINE_PLACES, context=_ROUNDING_CONTEXT))


def protocol_of(version: object) -> str | None:
    """The protocol a ``version`` string speaks (``"0.2"`` for "0.2" or "0.2.5"), or None for any other."""
    match = _MAJOR_MINOR.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        return None
    protocol = f"{match.group(1)}.{match.group(2)}"
    return protocol if protocol in PROTOCOLS else None


def signs_everything(pcs: Mapping[str, Any]) -> bool:
    """Whether the PCS speaks 0.2, whose signature covers every field but ``sig``."""
    return protocol_of(pcs.get("version")) == V0_2


def signed_subset(pcs: Mapping[str, Any]) -> dict[str, Any]:
    """0.1: the eight signed fields, floats rounded to 9 decimals."""
    subset = {name: pcs[name] for name in SIGNED_FIELDS}
    for name in FLOAT_FIELDS:
        subset[name] = round9(subset[name])
    return subset


def rounded(value: Any) -> Any:
    """``value`` with every float at any depth rounded by ``round9``; integers, booleans, strings, null kept."""
    if isinstance(value, float):
        return round9(value)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def _serialise(obj: Mapping[str, Any], leave_out: tuple[str, ...]) -> bytes:
    """0.2's serialisation of ``obj`` without the top-level keys ``leave_out``.

    Python's ``json.dumps`` with sorted keys (by code point, at every level), ``,`` and ``:`` separators, non-ASCII
    escaped as \\uXXXX, floats as the repr of their rounded value. NaN and infinities have no JSON form:
    ValueError (the schema refuses them first).
    """
    kept = {key: value for key, value in obj.items() if key not in leave_out}
    return json.dumps(rounded(kept), sort_keys=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def canonical_payload(pcs: Mapping[str, Any]) -> bytes:
    """The bytes whose SHA-256 is signed, for the PCS's version.

    0.1 (and a PCS naming no version): JSON of the signed subset with sorted keys and no spaces, floats written as
    Python's repr. 0.2: the whole PCS without ``sig``, serialised as ``_serialise`` says.
    """
    if signs_everything(pcs):
        return _serialise(pcs, ("sig",))
    return json.dumps(
        signed_subset(pcs), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def signing_digest(pcs: Mapping[str, Any]) -> bytes:
    """SHA-256 of the canonical payload: the 32 bytes that HMAC-SHA256 and Ed25519 sign."""
    return hashlib.sha256(canonical_payload(pcs)).digest()


def content_payload(pcs: Mapping[str, Any]) -> bytes:
    """0.2: the canonical serialisation without ``sig``, ``attempt`` and ``sent_at``: what one PCS is."""
    return _serialise(pcs, PER_DELIVERY_FIELDS)


def content_digest(pcs: Mapping[str, Any]) -> str:
    """0.2: SHA-256 hex of the content payload; two deliveries of one ``pcs_id`` are a replay exactly when equal."""
    return hashlib.sha256(content_payload(pcs)).hexdigest()


def signing_and_content_digests(pcs: Mapping[str, Any]) -> tuple[bytes, str]:
    """0.2: ``signing_digest`` and ``content_digest`` at once, the floats rounded once for both (a verifier
    needs both for every PCS it receives)."""
    whole = rounded(dict(pcs))

    def digest(leave_out: tuple[str, ...]) -> bytes:
        kept = {key: value for key, value in whole.items() if key not in leave_out}
        text = json.dumps(kept, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("ascii")
        return hashlib.sha256(text).digest()

    return digest(("sig",)), digest(PER_DELIVERY_FIELDS).hex()
