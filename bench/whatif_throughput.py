"""How fast a what-if re-verifies stored PCS: the pure part (two ``verify_pcs`` calls per PCS) on one core.

The what-if reads each stored body once and verifies it under the version in service and under the draft;
this prints the PCS per second of that verification, so the default of 10,000 PCS can be put in seconds.
Reading the bodies from PostgreSQL comes on top (chunks of 1,000 rows).

    .venv/bin/python bench/whatif_throughput.py [--pcs 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flk_site.testing import make_pcs
from policy.verification import VerifyParamsValues, verify_pcs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # Bodies as the database returns them: parsed JSON, a share of them degraded or with a wrong budget.
    bodies = [json.loads(json.dumps(make_pcs(degraded=n % 10 == 0))) for n in range(args.pcs)]
    active = VerifyParamsValues(version=1)
    draft = replace(active, version=2, tol_d=0.10, budget_tol=0.005)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        changed = sum(verify_pcs(b, active).decision != verify_pcs(b, draft).decision for b in bodies)
        best = min(best, time.perf_counter() - start)
    print(f"what-if verification: {args.pcs} PCS in {best * 1000:.0f} ms (best of {args.repeat}), "
          f"{args.pcs / best:,.0f} PCS/s; {changed} decisions changed")  # fmt: skip


if __name__ == "__main__":
    main()
