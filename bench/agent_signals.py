"""How fast the agent computes its signals: coh★ vectorised against a per-direction loop, and PQ r.

Prints the best of several runs for coh★ over 10 000 x 768 points (M=100 directions, B=20 bins), the
vectorised ``coherence`` against ``coherence_loop`` (one projection and one np.histogram per direction,
the straightforward way), checks both give the same coh★ and v★, and times product quantisation of
2 000 x 768 embeddings (8 subspaces x 256 codes) followed by zlib.

    .venv/bin/python bench/agent_signals.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent_client.signals import coherence, coherence_loop, compressibility_embeddings


def best_of(repeat: int, fn, *args, **kwargs):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    cloud = rng.standard_normal((10_000, 768))
    fast, fast_result = best_of(args.repeat, coherence, cloud, directions=100, bins=20, seed=7)
    slow, slow_result = best_of(args.repeat, coherence_loop, cloud, directions=100, bins=20, seed=7)
    same = fast_result == slow_result
    print(f"coh★ 10000x768, M=100, B=20: vectorised {fast * 1000:.1f} ms, loop {slow * 1000:.1f} ms, "
          f"speed-up {slow / fast:.1f}x, same coh★ and v★: {same} (coh★={fast_result[0]})")  # fmt: skip
    embeddings = rng.standard_normal((2_000, 768))
    pq, r = best_of(args.repeat, compressibility_embeddings, embeddings, subspaces=8, codes=256, seed=7)
    print(f"PQ r 2000x768, 8 subspaces x 256 codes + zlib: {pq * 1000:.0f} ms (best of {args.repeat}), r={r:.4f}")
    if not same:
        sys.exit("vectorised and loop coherence disagree")


if __name__ == "__main__":
    main()
