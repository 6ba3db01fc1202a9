"""How fast the agent computes its signals: coh★ vectorised against a per-direction loop, and r.

Prints the best (and the median) of several runs for coh★ over 10 000 x 768 points (M=100 directions,
B=20 bins), the vectorised ``coherence`` against ``coherence_loop`` (one projection and one np.histogram
per direction, the straightforward way), checks both give the same coh★ and v★ (for the timed seed and a
few more); then the same cloud as float32 values (as embeddings usually come), product quantisation of
2 000 x 768 embeddings (8 subspaces x 256 codes) followed by zlib, and r from the bytes of a 10 000 x 768
cloud of float32 values widened to float64. The loop is bound by memory bandwidth and the vectorised
version by arithmetic, so their ratio depends on the machine (its cache and memory more than its cores)
and on what else it is doing; run it on a quiet machine for the figures to compare. The first line names
the BLAS kernels numpy loaded (its own choice for the CPU, or the one OPENBLAS_CORETYPE names): on an
AVX-512 CPU its AVX2 kernels make the float32 product, and so the vectorised coh★, about 40 % slower.

    .venv/bin/python bench/agent_signals.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent_client.signals import coherence, coherence_loop, compressibility_bytes, compressibility_embeddings


def blas_line() -> str:
    """Which BLAS numpy loaded, its kernels and threads: the vectorised coh★ is bound by its float32 product."""
    from threadpoolctl import threadpool_info

    libraries = [library for library in threadpool_info() if library["user_api"] == "blas"]
    if not libraries:
        return "BLAS: none found by threadpoolctl"
    first = libraries[0]
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    chosen = f"OPENBLAS_CORETYPE={pinned}" if pinned else "chosen by the library for this CPU"
    return (f"BLAS: {first['internal_api']} {first['version']}, {first.get('architecture', '?')} kernels "
            f"({chosen}), {first['num_threads']} threads")  # fmt: skip


def best_of(repeat: int, fn, *args, **kwargs):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def timings(repeat: int, fn, *args, **kwargs):
    """The best and the median time of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(blas_line())
    rng = np.random.default_rng(2026)
    cloud = rng.standard_normal((10_000, 768))
    fast, fast_median, fast_result = timings(args.repeat, coherence, cloud, directions=100, bins=20, seed=7)
    slow, slow_median, slow_result = timings(args.repeat, coherence_loop, cloud, directions=100, bins=20, seed=7)
    same = fast_result == slow_result and all(
        coherence(cloud, 100, 20, seed) == coherence_loop(cloud, 100, 20, seed) for seed in range(4)
    )
    print(f"coh★ 10000x768, M=100, B=20: vectorised {fast * 1000:.1f} ms (median {fast_median * 1000:.1f}), "
          f"loop {slow * 1000:.1f} ms (median {slow_median * 1000:.1f}), speed-up {slow / fast:.1f}x, "
          f"same coh★ and v★ (seeds 7, 0-3): {same} (coh★={fast_result[0]})")  # fmt: skip
    narrow = cloud.astype(np.float32)  # embeddings usually come as float32: projected as they are
    fast32, fast32_median, result32 = timings(args.repeat, coherence, narrow, directions=100, bins=20, seed=7)
    same32 = result32 == coherence_loop(narrow, directions=100, bins=20, seed=7)
    print(f"coh★ of the same cloud as float32: {fast32 * 1000:.1f} ms (median {fast32_median * 1000:.1f}), "
          f"same coh★ and v★ as the loop: {same32}")  # fmt: skip
    same = same and same32
    embeddings = rng.standard_normal((2_000, 768))
    pq, r = best_of(args.repeat, compressibility_embeddings, embeddings, subspaces=8, codes=256, seed=7)
    print(f"PQ r 2000x768, 8 subspaces x 256 codes + zlib: {pq * 1000:.0f} ms (best of {args.repeat}), r={r:.4f}")
    widened = rng.standard_normal((10_000, 768)).astype(np.float32).astype("<f8").tobytes()
    zlib_time, r_bytes = best_of(min(args.repeat, 3), compressibility_bytes, widened)
    print(f"r from bytes, 10000x768 float32 values as float64 (61 MB): {zlib_time:.2f} s (best of "
          f"{min(args.repeat, 3)}), r={r_bytes:.4f}")  # fmt: skip
    if not same:
        sys.exit("vectorised and loop coherence disagree")


if __name__ == "__main__":
    main()
