"""pcs_id, the canonical signed payload and its digest (DESIGN.md section 6, golden vectors).

These bytes are the wire contract: changing any of them breaks every deployed agent's signatures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

SIGNED_FIELDS = ("pcs_id", "merkle_root", "epoch", "shard_id", "D_hat", "coh_star", "r", "budget")
FLOAT_FIELDS = ("D_hat", "coh_star", "r", "budget")
_NINE_PLACES = Decimal("1e-9")


def pcs_id_for(merkle_root: str, epoch: int, shard_id: str) -> str:
    """sha256_hex(merkle_root + "|" + str(epoch) + "|" + shard_id)."""
    return hashlib.sha256(f"{merkle_root}|{epoch}|{shard_id}".encode()).hexdigest()


def round9(x: float) -> float:
    """Round half-up (away from zero on ties) to 9 decimals, on the shortest decimal form of ``x``.

    Python's ``round`` works on the binary value, so 0.1234567895 would round down; the contract rounds
    the decimal text the agent wrote, which is what a reader of the JSON sees.
    """
    return float(Decimal(repr(float(x))).quantize(_NINE_PLACES, rounding=ROUND_HALF_UP))


def signed_subset(pcs: Mapping[str, Any]) -> dict[str, Any]:
    """The eight signed fields, floats rounded to 9 decimals."""
    subset = {name: pcs[name] for name in SIGNED_FIELDS}
    for name in FLOAT_FIELDS:
        subset[name] = round9(subset[name])
    return subset


def canonical_payload(pcs: Mapping[str, Any]) -> bytes:
    """JSON of the signed subset with sorted keys and no spaces; floats written as Python's repr."""
    return json.dumps(
        signed_subset(pcs), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def signing_digest(pcs: Mapping[str, Any]) -> bytes:
    """SHA-256 of the canonical payload: the 32 bytes that HMAC-SHA256 and Ed25519 sign."""
    return hashlib.sha256(canonical_payload(pcs)).digest()
