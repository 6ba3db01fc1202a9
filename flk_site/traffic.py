"""Synthetic agent traffic for the calibration tests and benches: valid PCS whose signals follow a stated law.

Every PCS made here passes every check (D̂ is the Theil–Sen slope of its counts, regime and budget are computed
from it), so only the conformal step can single one out: what is measured is the calibration, not the checks.
The laws are the ones ``bench/conformal_power.py`` uses; they describe no real tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from agent_client.pcs import assemble_pcs

SCALES = (2, 4, 8, 16, 32)


@dataclass(frozen=True)
class SignalLaw:
    """D̂ ~ Normal(d_mean, d_sd), coh★ ~ Beta(coh_a, coh_b), r ~ Normal(r_mean, r_sd): one kind of work."""

    d_mean: float = 1.3
    d_sd: float = 0.2
    coh_a: float = 12.0
    coh_b: float = 2.5
    r_mean: float = 0.66
    r_sd: float = 0.08

    def shifted(self, shift: float) -> SignalLaw:
        """The law moved by ``shift`` toward low dimension, low coherence and r far from r0 (0: unchanged)."""
        return SignalLaw(
            d_mean=self.d_mean - 0.8 * shift,
            d_sd=self.d_sd,
            coh_a=self.coh_a - 8.0 * shift,
            coh_b=self.coh_b + 2.0 * shift,
            r_mean=self.r_mean - 0.3 * shift,
            r_sd=self.r_sd + 0.07 * shift,
        )


BENIGN = SignalLaw()


def draw_pcs(
    rng: np.random.Generator, law: SignalLaw, *, shard_id: str, epoch: int, sent_at: datetime | None = None
) -> dict[str, Any]:
    """One valid, unsigned PCS with signals drawn from ``law`` and a fresh pcs_id (random merkle root)."""
    d = float(np.clip(rng.normal(law.d_mean, law.d_sd), 0.3, 3.0))
    coh = float(rng.beta(law.coh_a, law.coh_b))
    r = float(np.clip(rng.normal(law.r_mean, law.r_sd), 0.01, 1.0))
    # Counts N_j ∝ s^d: their Theil–Sen slope is d up to the rounding of the counts.
    counts = {s: max(1, round(40 * s**d)) for s in SCALES}
    return assemble_pcs(merkle_root=rng.bytes(32).hex(), epoch=epoch, shard_id=shard_id, scales=SCALES,
                        counts=counts, coh_star=coh, r=r, sent_at=sent_at)  # fmt: skip
