"""Faults injected under load, with a ledger of every request: nothing acknowledged may be lost or stored twice.

Starts a stack of its own (bench/load/stack.py: private PostgreSQL and Redis, gunicorn, a Celery worker, the
shipped nginx in front), sends fresh signed PCS of three tenants (one by one and, ``--batch-share`` of the
time, in batches of ten to /v1/pcs/batch; and replays of acknowledged ones) from ``--clients`` threads at
``--rate`` deliveries/s in all, and injects, one after the other:

  worker      SIGKILL to the Celery worker and its pool; a new one is started
  web         SIGKILL to gunicorn (master and workers); started again on the same port
  db-stop     PostgreSQL stopped (fast shutdown) for ``--fault-seconds``, then started
  db-crash    PostgreSQL crashed (immediate shutdown: SIGQUIT to the postmaster, no checkpoint), then started
  redis       Redis stopped for ``--fault-seconds``, then started (empty: it saves nothing)
  wal-budget  PostgreSQL stopped, the web restarted with FLK_WAL_TOTAL_BUDGET_BYTES=65536 and 300 one-shot
              PCS sent at once, so the WAL budget runs out (503 wal_budget + Retry-After); ``--fault-seconds``
              later PostgreSQL and the usual web are back

Most clients behave as the agent does (``agent_client.sender``): a 503, 429, other 5xx or a dropped
connection is retried after the server's Retry-After (else a capped backoff); ``--one-shot-share`` of the
deliveries are sent once and never retried. Each request is a ledger row (tenant, pcs_id, status,
Retry-After, times; never the body). At the end ``manage.py replay_wal`` runs and the ledger is accounted
against the database (bench/load/ledger.py). Exits 1 if an acknowledged PCS is lost, a PCS is stored or
queued for review twice, an answer differs from the stored one, a 503 has no Retry-After, or any other 5xx
came back.

    .venv/bin/python bench/load/chaos.py [--duration 300] [--rate 30] [--seed 1] [--clients 12]   (or: make chaos)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger import Attempt, account, recovery_seconds
from stack import LoadStack, work_directory
from traffic import compact, fresh_pcs

from agent_client.sender import backoff_delay, retry_after_seconds

TENANTS = ["acme", "globex", "initech"]
SMALL_WAL_BUDGET = {"FLK_WAL_TOTAL_BUDGET_BYTES": "65536", "FLK_WAL_TENANT_BUDGET_BYTES": "65536"}
BATCH_SIZE = 10
FLOOD = 300  # one-shot deliveries sent while the WAL budget is small: 300 bodies of ~620 bytes exceed 64 KiB
GRACE_SECONDS = 20.0  # after the load stops, a delivery being retried may finish for this long


class Load:
    """``clients`` threads sending at ``rate`` requests/s in all, each writing its rows to the shared ledger."""

    def __init__(self, url: str, credentials: dict, *, rate: float, clients: int, seed: int,
                 one_shot_share: float, replay_share: float, batch_share: float):  # fmt: skip
        self.url, self.credentials = url, credentials
        self.interval = clients / rate
        self.one_shot_share, self.replay_share, self.batch_share = one_shot_share, replay_share, batch_share
        self.rows: list[Attempt] = []
        self.acknowledged: list[tuple[str, bytes]] = []  # (tenant, body) to replay
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.give_up = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(k, random.Random(seed * 1000 + k)), daemon=True)
                        for k in range(clients)]  # fmt: skip

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        deadline = time.monotonic() + GRACE_SECONDS
        for t in self.threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        self.give_up.set()
        for t in self.threads:
            t.join(timeout=60)

    def _client(self, k: int, rng: random.Random) -> None:
        session = requests.Session()
        headers = {"Content-Type": "application/json", "X-Forwarded-For": f"10.1.{k // 250}.{k % 250 + 1}"}
        next_send = time.monotonic() + rng.uniform(0, self.interval)
        while not self.stop.is_set():
            delay = next_send - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            next_send = max(next_send + self.interval, time.monotonic())
            with self.lock:
                replay = self.acknowledged[rng.randrange(len(self.acknowledged))] if (
                    self.acknowledged and rng.random() < self.replay_share) else None  # fmt: skip
            batch = replay is None and rng.random() < self.batch_share
            if replay is not None:
                tenant, bodies = replay[0], [replay[1]]
            else:
                tenant = rng.choice(TENANTS)
                bodies = [compact(fresh_pcs(self.credentials["tenants"][tenant]["hmac"], rng,
                                            degraded=rng.random() < 0.3)) for _ in range(BATCH_SIZE if batch else 1)]  # fmt: skip
            session = self._deliver(session, headers, tenant, bodies, rng, retries=rng.random() >= self.one_shot_share,
                                    batch=batch)  # fmt: skip

    def flood(self, count: int, seed: int) -> None:
        """``count`` fresh PCS sent back to back from this thread, each once (no retry), into the ledger."""
        rng, session = random.Random(seed), requests.Session()
        headers = {"Content-Type": "application/json", "X-Forwarded-For": "10.9.0.1"}
        for _ in range(count):
            tenant = rng.choice(TENANTS)
            body = compact(fresh_pcs(self.credentials["tenants"][tenant]["hmac"], rng))
            session = self._deliver(session, headers, tenant, [body], rng, retries=False, batch=False)

    def _deliver(self, session: requests.Session, headers: dict, tenant: str, bodies: list[bytes],
                 rng: random.Random, *, retries: bool, batch: bool) -> requests.Session:  # fmt: skip
        """Send one PCS (``/v1/pcs/submit``) or a batch of them (``/v1/pcs/batch``) until acknowledged, as the
        agent does; a batch is sent again with the items that got a transient answer."""
        pending = [(json.loads(body)["pcs_id"], body) for body in bodies]
        attempt = 0
        while True:
            attempt += 1
            sent = time.time()
            status, retry_after, code, results = None, None, None, None
            try:
                r = session.post(f"{self.url}/v1/pcs/{'batch' if batch else 'submit'}", timeout=30,
                                 data=b"[" + b",".join(b for _, b in pending) + b"]" if batch else pending[0][1],
                                 headers={**headers, "X-Tenant-Id": tenant})  # fmt: skip
                status, retry_after = r.status_code, r.headers.get("Retry-After")
                code = _error_code(r) if status >= 400 else None
                if batch and status == 200:
                    results = r.json()["results"]
            except requests.RequestException:
                session = requests.Session()  # a dropped connection: the next attempt opens a new one
            answered = time.time()
            # A batch answered 200 has an answer per item; any other answer is the whole batch's.
            per_item = ([(res["status"], res.get("retry_after") or retry_after,
                          (res.get("body") or {}).get("code")) for res in results]
                        if results is not None else [(status, retry_after, code)] * len(pending))  # fmt: skip
            still, waits = [], []
            with self.lock:
                for (pcs_id, body), (item_status, item_retry_after, item_code) in zip(pending, per_item, strict=True):
                    self.rows.append(Attempt(tenant, pcs_id, item_status, None if item_retry_after is None else
                                             str(item_retry_after), sent, answered, retries, item_code))  # fmt: skip
                    if item_status is not None and 200 <= item_status < 300:
                        self.acknowledged.append((tenant, body))
                    elif item_status is None or item_status in (408, 425, 429) or item_status >= 500:
                        still.append((pcs_id, body))
                        if item_status in (429, 503):
                            waits.append(retry_after_seconds(item_retry_after))
            if not (retries and still) or self.give_up.is_set():
                return session
            pending = still
            wait = max((w for w in waits if w is not None), default=None)
            if wait is None:
                wait = backoff_delay(attempt, 0.5, 10.0, rng)
            if self.give_up.wait(wait):
                return session


def _error_code(response: requests.Response) -> str | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer.get("code") if isinstance(answer, dict) else None


def faults(stack: LoadStack, load: Load, hold: float) -> list[tuple[str, Callable[[], None]]]:
    def worker() -> None:
        stack.kill_worker()

    def web() -> None:
        stack.restart_web()

    def db_stop() -> None:
        stack.stop_database()
        time.sleep(hold)
        stack.start_database()

    def db_crash() -> None:
        stack.crash_database()
        stack.start_database()

    def redis_stop() -> None:
        stack.stop_redis()
        time.sleep(hold)
        stack.start_redis()

    def wal_budget() -> None:
        stack.stop_database()
        stack.restart_web(SMALL_WAL_BUDGET)
        # The restarted workers know no tenant yet, so every body is kept unverified, within the small budget.
        # Retrying clients slow down on the first 503s; a flood of one-shot deliveries spends the budget.
        began = time.monotonic()
        load.flood(FLOOD, seed=hash(hold) & 0xFFFF)
        time.sleep(max(0.0, hold - (time.monotonic() - began)))
        stack.start_database()
        stack.restart_web()

    return [("Celery worker SIGKILL, restarted", worker), ("web SIGKILL (master and workers), restarted", web),
            (f"PostgreSQL stopped {hold:.0f} s", db_stop), ("PostgreSQL crashed (immediate), restarted", db_crash),
            (f"Redis stopped {hold:.0f} s", redis_stop),
            (f"WAL budget spent (64 KiB, database down {hold:.0f} s)", wal_budget)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load, faults included")
    parser.add_argument("--rate", type=float, default=30.0, help="new deliveries per second, all clients together")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--one-shot-share", type=float, default=0.2, help="share of deliveries sent once, no retry")
    parser.add_argument(
        "--replay-share", type=float, default=0.1, help="share of sends that resend an acknowledged PCS"
    )
    parser.add_argument(
        "--batch-share",
        type=float,
        default=0.1,
        help=f"share of new deliveries sent as a batch of {BATCH_SIZE} to /v1/pcs/batch",
    )
    parser.add_argument("--fault-seconds", type=float, default=10.0, help="how long a stopped component stays down")
    parser.add_argument("--warmup", type=float, default=20.0)
    args = parser.parse_args()

    load_before = os.getloadavg()
    started_at = datetime.now(UTC)
    work = work_directory("chaos")
    print(f"FLK chaos run {started_at:%Y-%m-%d %H:%M} UTC: {args.duration:.0f} s, {args.rate:g} deliveries/s from "
          f"{args.clients} clients ({args.one_shot_share:.0%} one-shot, {args.replay_share:.0%} replays, {args.batch_share:.0%} batches of {BATCH_SIZE}), seed "
          f"{args.seed}, {os.cpu_count()} cores, load average {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}", flush=True)  # fmt: skip
    stack = LoadStack(work, tenants=TENANTS)
    try:
        load = Load(stack.url, stack.credentials, rate=args.rate, clients=args.clients, seed=args.seed,
                    one_shot_share=args.one_shot_share, replay_share=args.replay_share,
                    batch_share=args.batch_share)  # fmt: skip
        t0 = time.time()
        load.start()
        plan = faults(stack, load, args.fault_seconds)
        spacing = (args.duration - args.warmup - 10.0) / len(plan)
        windows = []
        for n, (name, inject) in enumerate(plan):
            time.sleep(max(0.0, t0 + args.warmup + n * spacing - time.time()))
            began = time.time()
            inject()
            over = time.time()
            windows.append((name, began, over))
            print(f"  {began - t0:6.1f} s  {name}: back after {over - began:.1f} s", flush=True)
        time.sleep(max(0.0, t0 + args.duration - time.time()))
        load.finish()
        elapsed = time.time() - t0
        replayed = stack.replay_wal()
        records, items = stack.stored_rows()
        result = account(load.rows, records, items)

        print(
            "\nfault                                              lasted  first 2xx after  503 (RA/no RA)  other 5xx  no answer"
        )
        for name, began, over in windows:
            during = [a for a in load.rows if began <= a.answered <= over + 5.0]
            recovered = recovery_seconds(load.rows, over)
            print(f"{name:50s} {over - began:5.1f} s  "
                  f"{'never' if recovered is None else f'{recovered:6.2f} s':>14s}  "
                  f"{sum(1 for a in during if a.status == 503 and a.retry_after):6d}/"
                  f"{sum(1 for a in during if a.status == 503 and not a.retry_after):<6d}  "
                  f"{sum(1 for a in during if (a.status and a.status > 503) or a.status in (500, 501, 502)):9d}  "
                  f"{sum(1 for a in during if a.status is None):9d}")  # fmt: skip
        print("(503 and errors counted from the fault's start to 5 s after its end)\n")
        print(f"replay_wal: {replayed.splitlines()[-1] if replayed else '(no output)'}")
        statuses = Counter({str(k): v for k, v in result.statuses.items()})
        print(f"ledger rows {result.attempts} in {elapsed:.0f} s ({result.attempts / elapsed:.1f}/s; one per PCS and "
              f"attempt, a batch's items one each), status mix {dict(sorted(statuses.items()))}")  # fmt: skip
        print(f"PCS sent {result.sent}, acknowledged (2xx) {result.acknowledged}, stored {result.stored}, "
              f"lost {len(result.lost)}, duplicated records {len(result.duplicated_records)}, duplicated review items "
              f"{len(result.duplicated_review_items)}, missing review items {len(result.missing_review_items)}, answers "
              f"differing from the stored one {len(result.answers_differ)}")  # fmt: skip
        print(f"503 by code {dict(sorted(result.unavailable_codes.items()))}")
        print(f"503 with Retry-After {result.unavailable_with_retry_after}, 503 without Retry-After "
              f"{result.unavailable_without_retry_after}, other 5xx {result.other_5xx}, no answer (connection "
              f"dropped) {result.no_answer}; one-shot deliveries never acknowledged {result.never_acknowledged_one_shot}")  # fmt: skip
        load_after = os.getloadavg()
        print(f"load average at the end {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
        for key in result.lost[:10]:
            print(f"  lost: tenant {key[0]} pcs_id {key[1]}")
        failures = result.failures()
        print("FAIL: " + "; ".join(failures) if failures else "PASS: nothing acknowledged was lost or stored twice")
    finally:
        stack.close()
        if not os.environ.get("FLK_CHAOS_KEEP"):
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"files kept in {work}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
