"""Sustained delivery from one agent process to a local service, with the outbox fsync on.

Creates a throwaway PostgreSQL database, migrates it, starts ``gunicorn flk_site.wsgi`` on it (as the
test suite's ``gunicorn_service`` fixture does, rate limit raised out of the way), then one agent process
appends each PCS to its outbox (fsync'd) and POSTs it with ``--concurrency`` sender threads. Prints PCS/s
and the outcome counts; the database is dropped at the end.

    .venv/bin/python bench/agent_delivery.py [--pcs 3000] [--concurrency 8] [--workers 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stack import HMAC_KEY, throwaway_service

from agent_client import signals
from agent_client.outbox import Outbox
from agent_client.pcs import assemble_pcs, sign_pcs
from agent_client.sender import DELIVERED, Sender


def make_bodies(count: int) -> list[dict]:
    """``count`` distinct signed PCS: the signals of one real cloud, a new Merkle root per PCS."""
    cloud = np.random.default_rng(1).random((2000, 3))
    counts = signals.box_counts(cloud)
    coh, v_star = signals.coherence(cloud, seed=1)
    r = signals.compressibility_bytes(cloud.tobytes())
    bodies = []
    for i in range(count):
        root = f"{i:064x}"
        pcs = assemble_pcs(merkle_root=root, epoch=i, shard_id="bench", scales=list(signals.DEFAULT_SCALES),
                           counts=counts, coh_star=coh, r=r, v_star=v_star, seed=1)  # fmt: skip
        bodies.append(sign_pcs(pcs, "hmac", HMAC_KEY.encode()))
    return bodies


STUB = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536  # one write per response: split writes meet delayed ACKs on a keep-alive connection
    disable_nagle_algorithm = True
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        at = body.find(b'"pcs_id":"') + 10  # the verdict names the PCS, which the agent checks before it acks
        answer = b'{"pcs_id":"' + body[at:at + 64] + b'"}'
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer))); self.end_headers(); self.wfile.write(answer)
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H); print(s.server_address[1], flush=True); s.serve_forever()
"""


def run_agent(url: str, outbox_dir: Path, bodies: list[dict], concurrency: int, fsync: bool) -> str:
    """Append (fsync) and POST every body from ``concurrency`` threads of this process; a one-line summary."""
    with Outbox(outbox_dir, fsync=fsync) as outbox:
        sender = Sender(url, outbox)
        start, cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(sender.submit, bodies))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        delivered = sum(r.outcome == DELIVERED for r in results)
        statuses = sorted({r.status for r in results}, key=str)
        return (f"{len(results)} PCS in {elapsed:.2f} s = {len(results) / elapsed:,.0f} PCS/s, "
                f"the agent's CPU {cpu / len(results) * 1e6:,.0f} µs per PCS "
                f"(outbox fsync {'on' if fsync else 'off'}, {concurrency} sender threads); delivered {delivered}, "
                f"statuses {statuses}, pending {len(outbox.pending())}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--no-fsync", action="store_true", help="outbox without fsync, to compare")
    args = parser.parse_args()

    with throwaway_service(name="agent", pg=args.pg, redis_url=args.redis, workers=args.workers) as (service, work, _):
        bodies = make_bodies(args.pcs + 1)
        run_agent(service.url, work / "warm", bodies[-1:], 1, True)  # the first request warms a worker
        line = run_agent(service.url, work / "outbox", bodies[:-1], args.concurrency, not args.no_fsync)
        print(f"delivery to the service ({args.workers} gunicorn workers): {line}")
        # The agent's own ceiling: the same outbox and sender against a stub that answers 200 at once.
        stub = subprocess.Popen([sys.executable, "-c", STUB], stdout=subprocess.PIPE, text=True)
        try:
            port = stub.stdout.readline().strip()
            line = run_agent(f"http://127.0.0.1:{port}", work / "stub", bodies[:-1], args.concurrency, True)
            print(f"delivery to a stub answering 200 (agent side alone): {line}")
        finally:
            stub.kill()
            stub.wait()


if __name__ == "__main__":
    main()
