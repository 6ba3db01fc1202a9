"""Assembling and signing a PCS from its signals: the last step of the agent before the outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent_client import PROTOCOL_VERSION, SCHEMA_NAME, signing
from agent_client.canonical import PROTOCOLS, pcs_id_for, round9, signing_digest
from agent_client.dimension import theil_sen_dhat
from agent_client.regime import BudgetWeights, RegimeThresholds, classify_regime, compute_budget


def assemble_pcs(
    *,
    merkle_root: str,
    epoch: int,
    shard_id: str,
    scales: Sequence[int],
    counts: Mapping[int | str, int],
    coh_star: float,
    r: float,
    v_star: Sequence[float] = (),
    seed: int = 0,
    attempt: int = 1,
    outbox_seq: int = 0,
    degraded: bool = False,
    fallbacks: Sequence[str] = (),
    sent_at: datetime | None = None,
    weights: BudgetWeights = BudgetWeights(),
    thresholds: RegimeThresholds = RegimeThresholds(),
    version: str = PROTOCOL_VERSION,
) -> dict[str, Any]:
    """A complete, unsigned PCS: D̂ by Theil–Sen, regime and budget from it, ``pcs_id`` from the root.

    The signal values are rounded to 9 decimals as the signature will see them, so the JSON an agent sends
    is exactly what it signed. ``version`` is the protocol it will be signed under: "0.2" (the default) signs
    every field, "0.1" only the eight of ``canonical.SIGNED_FIELDS``.
    """
    if version not in PROTOCOLS:
        raise ValueError(f"PCS version must be one of {', '.join(PROTOCOLS)}, got {version!r}")
    n_j = {str(s): int(counts[s] if s in counts else counts[str(s)]) for s in scales}  # type: ignore[index]
    d_hat = round9(theil_sen_dhat(list(scales), n_j))
    coh = round9(coh_star)
    r9 = round9(r)
    return {
        "pcs_id": pcs_id_for(merkle_root, epoch, shard_id),
        "schema": SCHEMA_NAME,
        "version": version,
        "shard_id": shard_id,
        "epoch": epoch,
        "attempt": attempt,
        "sent_at": (sent_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed": seed,
        "scales": [int(s) for s in scales],
        "N_j": n_j,
        "coh_star": coh,
        "v_star": [round9(x) for x in v_star],
        "D_hat": d_hat,
        "r": r9,
        "regime": classify_regime(d_hat, coh, thresholds),
        "budget": round9(compute_budget(d_hat, coh, r9, weights)),
        "merkle_root": merkle_root,
        "sig": "",
        "ft": {"outbox_seq": outbox_seq, "degraded": degraded, "fallbacks": list(fallbacks), "clock_skew_ms": 0},
    }


def sign_pcs(pcs: dict[str, Any], alg: str, key: bytes) -> dict[str, Any]:
    """Set ``sig``: ``key`` is the HMAC secret for ``hmac`` or the 32-byte seed for ``ed25519``.

    Under 0.2 the signature covers every other field, ``attempt`` and ``ft`` included: sign again after
    changing any of them (``PcsSigner`` in the sender does it for each try).
    """
    digest = signing_digest(pcs)
    if alg == signing.HMAC:
        pcs["sig"] = signing.hmac_sign(key, digest)
    elif alg == signing.ED25519:
        pcs["sig"] = signing.ed25519_sign(key, digest)
    elif alg == signing.NONE:
        pcs["sig"] = ""
    else:
        raise ValueError(f"unknown signature algorithm {alg!r}")
    return pcs


@dataclass(frozen=True, repr=False)
class PcsSigner:
    """An algorithm and its key, to sign PCS again when a field changes (a new ``attempt``, say)."""

    alg: str
    key: bytes

    def __post_init__(self) -> None:
        if self.alg not in signing.ALGORITHMS:
            raise ValueError(f"unknown signature algorithm {self.alg!r}")

    def __repr__(self) -> str:  # never the key, in a log line or a traceback
        return f"PcsSigner(alg={self.alg!r})"

    def sign(self, pcs: dict[str, Any]) -> dict[str, Any]:
        return sign_pcs(pcs, self.alg, self.key)
