"""Throughput and latency of POST /v1/pcs/batch on the real stack, and an agent draining its outbox through it.

The service runs as ``bench/ingest.py`` runs it (plain gunicorn over a throwaway PostgreSQL database, HMAC
signatures, the inbox WAL with fsync, Redis rate limits raised out of the way but still asked). Phases:

  batch N     PCS/s and the latency of each batch (p50/p95/p99) for batches of N new signed PCS, sent by
              ``--connections`` client threads over kept connections, for N in ``--sizes`` (1, 64, 500)
  submit      the same PCS one by one to /v1/pcs/submit, for comparison
  agent       two outboxes of ``--outbox-pcs`` signed PCS each (100,000), drained by ``Sender.drain`` with
              ``--connections`` threads: one in batches of 500, one PCS a request; PCS/s of each and the ratio

Prints the CPU each PCS cost the service, PostgreSQL and Redis (from /proc) per phase. The client runs on
the same machine and takes its share of the cores.

    .venv/bin/python bench/batch_ingest.py [--pcs 20000] [--sizes 1,64,500] [--connections 4] [--outbox-pcs 100000]
    FLK_BENCH_SERVICE_ENV="PCS_SIGN_ALG=none FLK_ALLOW_UNSIGNED=1" ...   to switch a cause off (see docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stack import HMAC_KEY, cpu_by_group, throwaway_service  # noqa: E402

from agent_client.outbox import Outbox  # noqa: E402
from agent_client.pcs import assemble_pcs, sign_pcs  # noqa: E402
from agent_client.sender import Sender  # noqa: E402


def signed_bodies(start: int, count: int) -> list[str]:
    """``count`` new PCS signed under 0.2, shards ``batch-<k>``, as compact JSON."""
    key = HMAC_KEY.encode()
    template = dict(scales=[2, 4, 8, 16, 32], counts={2: 3, 4: 5, 8: 9, 16: 17, 32: 31}, coh_star=0.73, r=0.87,
                    v_star=[0.12, 0.98, -0.05], seed=7)  # fmt: skip
    return [
        json.dumps(
            sign_pcs(assemble_pcs(merkle_root=f"{k:064x}", epoch=1, shard_id=f"batch-{k}", **template), "hmac", key),
            separators=(",", ":"),
        )
        for k in range(start, start + count)
    ]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def send_all(url: str, path: str, payloads: list[bytes], connections: int, items: list[int]) -> dict:
    """POST every payload, ``connections`` at a time over kept connections; PCS/s and per-request latency."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    bad = [0]
    lock = threading.Lock()
    next_index = [0]

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        mine = []
        while True:
            with lock:
                k = next_index[0]
                next_index[0] += 1
            if k >= len(payloads):
                break
            started = time.perf_counter()
            conn.request("POST", path, payloads[k], {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            mine.append(time.perf_counter() - started)
            # A batch answers 200 whatever its items got: count the items that were not accepted.
            if response.status != 200 or (path.endswith("batch") and data.count(b'"status":200') != items[k]):
                with lock:
                    bad[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"pcs": sum(items), "requests": len(payloads), "seconds": elapsed, "pcs_per_s": sum(items) / elapsed,
            "p50_ms": pct(latencies, 50) * 1000, "p95_ms": pct(latencies, 95) * 1000,
            "p99_ms": pct(latencies, 99) * 1000, "bad_requests": bad[0]}  # fmt: skip


def batches(bodies: list[str], size: int) -> tuple[list[bytes], list[int]]:
    groups = [bodies[i : i + size] for i in range(0, len(bodies), size)]
    return [("[" + ",".join(g) + "]").encode() for g in groups], [len(g) for g in groups]


def drain_outbox(url: str, bodies: list[str], batch_size: int, connections: int) -> dict:
    """An outbox of ``bodies`` (signed PCS, sent as signed) drained by the agent's sender."""
    with tempfile.TemporaryDirectory(prefix="flk-bench-outbox-") as directory, Outbox(directory) as outbox:
        outbox.append_many([json.loads(b) for b in bodies], "default", url)
        started = time.perf_counter()
        summary = Sender(url, outbox, batch_size=batch_size).drain(concurrency=connections)
        elapsed = time.perf_counter() - started
        return {"delivered": summary.delivered, "dead": summary.dead, "pending": summary.pending,
                "seconds": elapsed, "pcs_per_s": summary.delivered / elapsed}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcs", type=int, default=20000, help="PCS per batch-size phase")
    parser.add_argument("--single-pcs", type=int, default=5000, help="PCS of the one-by-one /submit phase")
    parser.add_argument("--sizes", default="1,64,500")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--outbox-pcs", type=int, default=100000, help="PCS in the outbox drained through batches")
    parser.add_argument("--single-outbox-pcs", type=int, default=None,
                        help="PCS in the outbox drained one by one (default: as many; fewer keeps the run short)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: 2 per core)")
    parser.add_argument("--audit-rate", type=float, default=None, help="set the active VerifyParams' audit shares "
                        "(audit_rate and bootstrap_audit_rate) to this; default as shipped (0.2 for a new tenant)")  # fmt: skip
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    extra = dict(pair.split("=", 1) for pair in os.environ.get("FLK_BENCH_SERVICE_ENV", "").split())
    redis.Redis.from_url(args.redis).delete("flk:bucket:default")
    workers = args.workers or 2 * (os.cpu_count() or 1)
    print(f"FLK batch benchmark: {workers} gunicorn workers, {args.connections} client connections, "
          f"{os.cpu_count()} cores, service env {extra or 'as shipped'}, audit share "
          f"{'as shipped' if args.audit_rate is None else args.audit_rate}, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    with throwaway_service(name="batch", pg=args.pg, redis_url=args.redis, workers=workers,
                           extra_env={"FLK_BATCH_MAX_BYTES": str(64 * 1024 * 1024), "FLK_CONFIG_MAX_AGE_SECONDS": "1",
                                      **extra}) as (service, _, db):  # fmt: skip
        if args.audit_rate is not None:  # an audit sample costs a review item: a row more per sampled PCS
            with psycopg.connect(db) as conn:
                conn.execute("UPDATE ingest_verifyparams SET audit_rate = %s, bootstrap_audit_rate = %s WHERE is_active",
                             [args.audit_rate, args.audit_rate])  # fmt: skip
            time.sleep(1.5)  # the workers read the params again within FLK_CONFIG_MAX_AGE_SECONDS
        start = 0
        warm, start = signed_bodies(start, 2000), start + 2000
        payloads, items = batches(warm, 100)
        send_all(service.url, "/v1/pcs/batch", payloads, args.connections, items)  # workers import, connect
        rows = []
        for size in sizes:
            n = args.pcs if size > 1 else min(args.pcs, args.single_pcs)
            bodies, start = signed_bodies(start, n), start + n
            payloads, items = batches(bodies, size)
            before = cpu_by_group(service.process.pid)
            figures = send_all(service.url, "/v1/pcs/batch", payloads, args.connections, items)
            after = cpu_by_group(service.process.pid)
            figures["cpu_us"] = {g: (after[g] - before[g]) / n * 1e6 for g in after}
            rows.append((f"batch {size}", figures))
        bodies, start = signed_bodies(start, args.single_pcs), start + args.single_pcs
        before = cpu_by_group(service.process.pid)
        figures = send_all(service.url, "/v1/pcs/submit", [b.encode() for b in bodies], args.connections,
                           [1] * len(bodies))  # fmt: skip
        after = cpu_by_group(service.process.pid)
        figures["cpu_us"] = {g: (after[g] - before[g]) / len(bodies) * 1e6 for g in after}
        rows.append(("submit", figures))
        for name, f in rows:
            cpu = f["cpu_us"]
            print(f"{name:10s} {f['pcs']:7d} PCS in {f['requests']:6d} requests  {f['pcs_per_s']:8,.0f} PCS/s  "
                  f"per request p50 {f['p50_ms']:7.2f} ms  p95 {f['p95_ms']:7.2f} ms  p99 {f['p99_ms']:7.2f} ms  "
                  f"CPU per PCS {sum(cpu.values()):5.0f} µs (service {cpu['service']:.0f}, PostgreSQL "
                  f"{cpu['postgres']:.0f}, Redis {cpu['redis']:.0f})  requests not all accepted {f['bad_requests']}")  # fmt: skip
        if args.outbox_pcs:
            batched_bodies, start = signed_bodies(start, args.outbox_pcs), start + args.outbox_pcs
            singles = args.single_outbox_pcs or args.outbox_pcs
            single_bodies, start = signed_bodies(start, singles), start + singles
            batched = drain_outbox(service.url, batched_bodies, 500, args.connections)
            single = drain_outbox(service.url, single_bodies, 1, args.connections)
            for name, f in (("batches", batched), ("singles", single)):
                print(f"agent drain, {name}: {f['delivered']} delivered ({f['dead']} dead, {f['pending']} pending) in "
                      f"{f['seconds']:.1f} s: {f['pcs_per_s']:,.0f} PCS/s")  # fmt: skip
            print(f"agent drain through batches / one by one: {batched['pcs_per_s'] / single['pcs_per_s']:.1f}x")
        with psycopg.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM ingest_pcsrecord").fetchone()[0]
        print(f"stored outcomes {stored}")


if __name__ == "__main__":
    main()
