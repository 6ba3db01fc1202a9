"""Throughput and latency of POST /v1/pcs/submit against the DRF no-op ceiling, on the real stack.

Creates a throwaway PostgreSQL database, migrates it, and starts plain ``gunicorn flk_site.wsgi`` (so
``gunicorn.conf.py`` applies: ``FLK_GUNICORN_WORKER_CLASS``, ``WEB_CONCURRENCY``, JSON access logs, metrics
files) with HMAC signing, the inbox WAL on and Redis rate limits (raised out of the way, but still one Redis
round trip per request). The no-op endpoint (``FLK_BENCH_NOOP=1``) is mounted in the same server. From a second process
on loopback, ``wrk`` (Debian package ``wrk``) sends a fixed number of signed PCS per phase, in rounds:

  noop        the DRF no-op endpoint: the framework ceiling
  fresh       N new PCS (WAL append + signature + verify + one INSERT)
  duplicate   the same N again (dedup answers)
  mixed       N/2 new and N/2 already stored, interleaved

then a paced load at half the fresh throughput (open loop, latency measured from the scheduled send time,
so a stalled server cannot hide its queueing). Prints req/s, p50/p95/p99 and the ratio to the ceiling for
each phase's median round; the fresh/no-op ratio within each round; and the CPU each request of a phase
cost the service, PostgreSQL and Redis (from /proc; anything else using PostgreSQL meanwhile counts too).

    .venv/bin/python bench/ingest.py [--pcs 5000] [--rounds 3] [--connections 16] [--workers N]
                                                                                  (or: make bench)
    FLK_GUNICORN_WORKER_CLASS=gthread FLK_GUNICORN_THREADS=4 ... for threaded workers
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stack import HMAC_KEY, cpu_by_group, throwaway_service  # noqa: E402

from agent_client.pcs import assemble_pcs, sign_pcs  # noqa: E402

# One wrk thread sends the bodies file (one JSON document per line) once, then stops. One thread, because a
# wrk thread that stops while others run leaves connections it has opened but never sends on: a sync gunicorn
# worker that accepts one waits on it until wrk exits, and the phase measures that stall instead of the
# service (with -t2 some phases ran at a fifth of their rate, p95 in seconds). One thread keeps up with the
# service here: -t1 and -t2 both measured 2,300 req/s on the no-op with continuous load.
# A connection may have one request in flight when the thread stops: at most `connections` extra requests,
# which re-send a body (a duplicate) and are counted like the others.
WRK_SCRIPT = r"""
function init(args)
  bodies = {}
  for line in io.lines(os.getenv("FLK_BENCH_BODIES")) do
    table.insert(bodies, line)
  end
  idx = 0
  answered = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  idx = idx % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[idx])
end
function response(status, headers, body)
  answered = answered + 1
  if answered == #bodies then
    -- wrk's main thread sleeps for -d regardless: tell the driver, which interrupts it with SIGINT.
    local marker = io.open(os.getenv("FLK_BENCH_BODIES") .. ".done", "w")
    marker:close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def make_bodies(start: int, count: int) -> list[str]:
    """``count`` distinct signed PCS (numbered from ``start``) as compact JSON lines."""
    lines = []
    for i in range(start, start + count):
        pcs = assemble_pcs(merkle_root=f"{i:064x}", epoch=i, shard_id="bench", scales=[2, 4, 8, 16, 32],
                           counts={2: 3, 4: 5, 8: 9, 16: 17, 32: 31}, coh_star=0.73, r=0.87,
                           v_star=[0.12, 0.98, -0.05], seed=42)  # fmt: skip
        lines.append(json.dumps(sign_pcs(pcs, "hmac", HMAC_KEY.encode()), separators=(",", ":")))
    return lines


def run_wrk(url: str, bodies: list[str], work: Path, name: str, connections: int) -> dict:
    path = work / f"{name}.jsonl"
    path.write_text("\n".join(bodies) + "\n")
    script = work / "bench.lua"
    script.write_text(WRK_SCRIPT)
    process = subprocess.Popen(
        ["wrk", "-t", "1", "-c", str(connections), "-d", "600s", "--timeout", "10s", "-s", str(script), url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "FLK_BENCH_BODIES": str(path)},
    )  # fmt: skip
    done = work / f"{path.name}.done"
    while not done.exists() and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    if not stdout.strip():
        raise RuntimeError(f"wrk failed: {stderr}")
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    return figures


def paced(url: str, bodies: list[str], rate: float, connections: int) -> dict:
    """Open-loop load at ``rate`` req/s over persistent connections; latency from the scheduled send time."""
    host, port = url.removeprefix("http://").split(":")
    per_conn = [bodies[i::connections] for i in range(connections)]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        mine: list[float] = []
        for j, body in enumerate(per_conn[k]):
            scheduled = start + (j * connections + k) / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            conn.request("POST", "/v1/pcs/submit", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - scheduled)
            if response.status not in (200, 202):
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {"rate": rate, "sent": len(latencies), "errors": errors[0], "p50_ms": pct(50), "p95_ms": pct(95),
            "p99_ms": pct(99)}  # fmt: skip


def cpu_total(groups: dict[str, float]) -> float:
    return sum(groups.values())


def median_round(runs: list[dict]) -> dict:
    """The run with the median throughput, its spread over the rounds attached."""
    ordered = sorted(runs, key=lambda f: f["rps"])
    return {**ordered[len(ordered) // 2], "min_rps": ordered[0]["rps"], "max_rps": ordered[-1]["rps"]}


def line(name: str, f: dict, ceiling: float | None = None) -> str:
    ratio = f"  {f['rps'] / ceiling:6.1%} of the no-op" if ceiling else ""
    spread = f" ({f['min_rps']:,.0f}–{f['max_rps']:,.0f})" if "min_rps" in f else ""
    return (f"{name:10s} {f['requests']:7d} req  {f['rps']:6,.0f} req/s{spread}  p50 {f['p50_us'] / 1000:6.2f} ms  "
            f"p95 {f['p95_us'] / 1000:6.2f} ms  p99 {f['p99_us'] / 1000:6.2f} ms  non-2xx {f['non_2xx']}{ratio}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcs", type=int, default=5000, help="PCS per phase and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the four phases; medians are reported")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py's)")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")

    redis.Redis.from_url(args.redis).delete("flk:bucket:default")
    workers = args.workers or int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
    with throwaway_service(name="ingest", pg=args.pg, redis_url=args.redis, workers=workers,
                           extra_env={"FLK_BENCH_NOOP": "1"}) as (service, work, db_url):  # fmt: skip
        n, c = args.pcs, args.connections
        warm = make_bodies(10**8, 1000)
        run_wrk(f"{service.url}/v1/bench/noop", warm, work, "warm-noop", c)  # every worker imports, connects
        run_wrk(f"{service.url}/v1/pcs/submit", warm, work, "warm", c)
        # The phases run in rounds, the no-op next to the submit path each time, and each phase reports its
        # median round: on a 2-core machine one phase alone can be off by a third from one run to the next.
        rounds: dict[str, list[dict]] = {"noop": [], "fresh": [], "duplicate": [], "mixed": []}
        for k in range(args.rounds):
            fresh, later = make_bodies(k * 2 * n, n), make_bodies(k * 2 * n + n, n // 2)
            mixed = [b for pair in zip(later, fresh[: n // 2], strict=True) for b in pair]
            for name, path, bodies in (("noop", "bench/noop", fresh), ("fresh", "pcs/submit", fresh),
                                       ("duplicate", "pcs/submit", fresh), ("mixed", "pcs/submit", mixed)):  # fmt: skip
                before = cpu_by_group(service.process.pid)
                figures = run_wrk(f"{service.url}/v1/{path}", bodies, work, f"{name}-{k}", c)
                after = cpu_by_group(service.process.pid)
                figures["cpu_us"] = {g: (after[g] - before[g]) / figures["requests"] * 1e6 for g in after}
                rounds[name].append(figures)
        noop, first, dup, mix = (median_round(rounds[name]) for name in ("noop", "fresh", "duplicate", "mixed"))
        half = paced(service.url, make_bodies(10**9, min(n, int(first["rps"] * 10))), first["rps"] / 2, c)
        with psycopg.connect(db_url) as conn:
            stored = conn.execute("SELECT count(*) FROM ingest_pcsrecord").fetchone()[0]
        wal_bytes = sum(p.stat().st_size for p in (work / "wal").rglob("*") if p.is_file())

        print(f"FLK ingest benchmark: {workers} gunicorn {os.environ.get('FLK_GUNICORN_WORKER_CLASS') or 'sync'} workers (gunicorn.conf.py), wrk -t1 -c{c}, "
              f"{n} PCS per phase × {args.rounds} rounds (median round; range in brackets), HMAC, WAL fsync, PostgreSQL, Redis rate limit, {os.cpu_count()} cores")  # fmt: skip
        print(line("noop", noop))
        for name, figures in (("fresh", first), ("duplicate", dup), ("mixed", mix)):
            print(line(name, figures, noop["rps"]))
        # Throughput ratios swing with the no-op's run; two steadier views of the same question: the ratio
        # within each round (the phases ran back to back), and the CPU each request costs the machine.
        paired = sorted(f["rps"] / o["rps"] for f, o in zip(rounds["fresh"], rounds["noop"], strict=True))
        print(f"fresh / no-op within each round: {', '.join(f'{r:.1%}' for r in paired)} "
              f"(median {paired[len(paired) // 2]:.1%})")  # fmt: skip
        cpu = {name: {g: statistics.median(f["cpu_us"][g] for f in runs) for g in runs[0]["cpu_us"]}
               for name, runs in rounds.items()}  # fmt: skip
        for name, groups in cpu.items():
            total = cpu_total(groups)
            ratio = f"  no-op / this {cpu_total(cpu['noop']) / total:6.1%}" if name != "noop" else ""
            print(f"CPU per request, {name:9s} {total:6.0f} µs (service {groups['service']:.0f}, PostgreSQL "
                  f"{groups['postgres']:.0f}, Redis {groups['redis']:.0f}; median of rounds){ratio}")  # fmt: skip
        print(f"half load  {half['sent']:7d} req at {half['rate']:,.0f} req/s (open loop): p50 {half['p50_ms']:.2f} ms  "
              f"p95 {half['p95_ms']:.2f} ms  p99 {half['p99_ms']:.2f} ms  errors {half['errors']}")  # fmt: skip
        print(f"stored outcomes {stored}, WAL files {wal_bytes / 1e6:.1f} MB (zeros written ahead included); socket errors "
              f"{sum(f['socket_errors'] for runs in rounds.values() for f in runs)}")  # fmt: skip


if __name__ == "__main__":
    main()
