"""``make load``: the stack of bench/load/stack.py under the locust users of bench/load/locustfile.py.

Starts PostgreSQL and Redis of its own, gunicorn as gunicorn.conf.py configures it (the API pool and the
console pool), a Celery worker and the shipped nginx proxy, then runs locust headless on loopback against the
proxy for ``--duration`` seconds or ``--max-requests`` requests, whichever comes first, and prints locust's
figures per endpoint: throughput, p50/p95/p99, the status mix, and whether p95 meets the SLO (200 ms).

    .venv/bin/python bench/load/run.py [--duration 150] [--users 40] [--spawn-rate 10] [--max-requests 100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from stack import LoadStack, work_directory  # noqa: E402

TENANTS = ["acme", "globex", "initech"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=150, help="seconds of load")
    parser.add_argument("--users", type=int, default=40, help="locust users (agents, batches, bursts, ...)")
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=100000, help="stop after this many requests (0: no limit)")
    args = parser.parse_args()

    load = os.getloadavg()
    work = work_directory("load")
    stack = LoadStack(work, tenants=TENANTS)
    try:
        print(f"FLK load run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {args.users} locust users for {args.duration} s"
              f"{f' or {args.max_requests} requests' if args.max_requests else ''}, through nginx to gunicorn "
              f"({stack.web_workers} {os.environ.get('FLK_GUNICORN_WORKER_CLASS') or 'sync'} API workers, "
              f"{stack.console_workers} console workers), a Celery worker, PostgreSQL 15 and Redis of its own; "
              f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)  # fmt: skip
        env = {**os.environ, "FLK_LOAD_CREDENTIALS": str(stack.credentials_path),
               "FLK_LOAD_MAX_REQUESTS": str(args.max_requests), "FLK_LOAD_SUMMARY": str(work / "summary.txt")}  # fmt: skip
        locust = str(Path(sys.executable).with_name("locust"))
        done = subprocess.run([locust, "-f", str(HERE / "locustfile.py"), "--headless", "--host", stack.url,
                               "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.duration}s",
                               "--stop-timeout", "10", "--loglevel", "WARNING", "--skip-log-setup",
                               "--only-summary"],
                              env=env, capture_output=True, text=True)  # fmt: skip
        summary = work / "summary.txt"
        if not summary.exists():
            print(done.stdout[-5000:], done.stderr[-5000:])
            sys.exit(f"locust exited {done.returncode} without a summary")
        print(summary.read_text(), end="")
        records, items = stack.stored_rows()
        load = os.getloadavg()
        print(f"stored outcomes {len(records)}, review items {len(items)}; load average at the end "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")  # fmt: skip
        errors = [line for line in done.stderr.splitlines() if "Traceback" in line or "Error" in line]
        if errors:
            print(f"locust reported {len(errors)} error lines, e.g. {errors[0][:200]}")
    finally:
        stack.close()
        if os.environ.get("FLK_LOAD_KEEP"):
            print(f"files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
