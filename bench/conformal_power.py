"""Power and false-escalation of the split-conformal decision on a synthetic labelled mixture.

Prints, for calibration sizes n and levels delta, the share of benign PCS escalated (bounded by delta by
the guarantee) and the share of anomalous PCS caught (power: not guaranteed, it depends on how far the
anomalies' scores sit from the benign ones). Signals are synthetic; the figures describe the method, not
any tenant's traffic.

    .venv/bin/python bench/conformal_power.py [--trials 200] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibration.conformal import conformal_threshold
from calibration.scoring import nonconformity_score

score = np.vectorize(nonconformity_score)


def benign(rng: np.random.Generator, size: int) -> np.ndarray:
    """Work that looks like the calibration traffic: moderate dimension, high coherence, r near r0."""
    return score(rng.normal(1.3, 0.35, size), rng.beta(12, 2.5, size), np.clip(rng.normal(0.66, 0.08, size), 0, 1))


def anomalous(rng: np.random.Generator, size: int, shift: float) -> np.ndarray:
    """Benign-like work moved by ``shift`` toward low dimension, low coherence and r far from r0."""
    return score(
        rng.normal(1.3 - 0.8 * shift, 0.35, size),
        rng.beta(12 - 8 * shift, 2.5 + 2 * shift, size),
        np.clip(rng.normal(0.66 - 0.3 * shift, 0.08 + 0.07 * shift, size), 0, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="calibration sets drawn per row")
    parser.add_argument("--test", type=int, default=500, help="benign and anomalous PCS scored per trial")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    # The false-escalation rate averages over calibration sets; its standard error is dominated by the
    # spread of the per-set rate (about sqrt(delta(1-delta)/n)) divided by sqrt(trials).
    print(f"{'n':>5} {'delta':>6} {'anomaly':>8} {'false-escalation':>17} {'±2 s.e.':>8} {'bound':>6} {'power':>7}")
    for n in (100, 500, 2000):
        for delta in (0.05, 0.1):
            for name, shift in (("subtle", 0.35), ("clear", 1.0)):
                false_escalated = caught = 0
                for _ in range(args.trials):
                    threshold = conformal_threshold(benign(rng, n), delta)
                    false_escalated += int((benign(rng, args.test) > threshold).sum())
                    caught += int((anomalous(rng, args.test, shift) > threshold).sum())
                total = args.trials * args.test
                var = delta * (1 - delta)
                two_se = 2 * (var / n / args.trials + var / total) ** 0.5
                print(
                    f"{n:>5} {delta:>6.2f} {name:>8} {false_escalated / total:>17.4f} {two_se:>8.4f} {delta:>6.2f} "
                    f"{caught / total:>7.3f}"
                )


if __name__ == "__main__":
    main()
