"""What the simulated agents send: fresh PCS of a tenant, signed with its key, in a chosen regime."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from agent_client.pcs import sign_pcs  # noqa: E402
from flk_site.testing import make_pcs  # noqa: E402

# Counts per scale that give each regime (D̂ from the Theil–Sen slope, coh★ as given): sticky (D̂ 0.86, coh★
# 0.73), mixed (coh★ below 0.70), non_sticky (D̂ near 2.8).
REGIMES: dict[str, dict[str, Any]] = {
    "sticky": {"counts": {2: 3, 4: 5, 8: 9, 16: 17, 32: 31}, "coh_star": 0.73},
    "mixed": {"counts": {2: 3, 4: 5, 8: 9, 16: 17, 32: 31}, "coh_star": 0.55},
    "non_sticky": {"counts": {2: 7, 4: 48, 8: 337, 16: 2352, 32: 16384}, "coh_star": 0.40},
}


def fresh_pcs(secret: str, rng: random.Random, *, degraded: bool = False, regime: str | None = None) -> dict[str, Any]:
    """A new PCS (a pcs_id no run has used: its shard carries random bits) signed under 0.2 with ``secret``."""
    shape = REGIMES[regime or rng.choice(list(REGIMES))]
    pcs = make_pcs(shard_id=f"load-{rng.getrandbits(64):016x}", r=round(rng.uniform(0.6, 0.95), 3),
                   degraded=degraded, **shape)  # fmt: skip
    return sign_pcs(pcs, "hmac", secret.encode())


def compact(pcs: dict[str, Any]) -> bytes:
    return json.dumps(pcs, separators=(",", ":")).encode()
