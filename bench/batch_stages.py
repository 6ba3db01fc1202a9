"""Where a batched PCS's time goes: each stage of ``ingest.batch.judge_items`` timed alone, in one process.

Runs the stages a batch item goes through on a throwaway migrated PostgreSQL database, in this process (no
HTTP, no gunicorn), each over the same ``--pcs`` signed PCS in batches of ``--batch``, and prints CPU
microseconds per PCS for each, so that a throughput figure of ``bench/batch_ingest.py`` can be read as the
sum of these costs over the machine's cores:

  parse      agent_client.schema.parse_pcs (strict JSON, schema)
  digests    the 0.2 signing and content digests (canonical serialisation, floats rounded at every depth)
  signature  HMAC-SHA256 check against the tenant's keys
  verify     the pure verification (Theil–Sen D̂, checks, budget, conformal)
  record     the outcome row and the first answer (new_record)
  insert     store.insert_many in one transaction (wall time: PostgreSQL's work included)
  follow-up  stored_answer: metrics and the outcome_stored receivers (the review queue for audit samples)

    .venv/bin/python bench/batch_stages.py [--pcs 5000] [--batch 500]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batch_ingest import signed_bodies  # noqa: E402
from stack import HMAC_KEY  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcs", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--audit-rate", type=float, default=None, help="audit shares of the params (default as shipped)"
    )
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    args = parser.parse_args()
    name = f"bench_stages_{os.getpid()}"
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    work = Path(f"/tmp/flk-stages-{os.getpid()}")
    env = {"DATABASE_URL": f"{args.pg}/{name}", "DJANGO_SECRET_KEY": "bench-only-" + "x" * 50, "DJANGO_DEBUG": "0",
           "PCS_SIGN_ALG": "hmac", "PCS_HMAC_KEY": HMAC_KEY, "FLK_VAR_DIR": str(work / "var"),
           "FLK_WAL_DIR": str(work / "wal"), "DJANGO_SETTINGS_MODULE": "flk_site.settings"}  # fmt: skip
    os.environ.update(env)
    os.environ.pop("REDIS_URL", None)  # follow-up work in process; the request's Redis round trips are not stages
    try:
        from flk_site.testing import manage

        manage(env, "migrate", "--noinput", "-v", "0")
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.db import transaction
    from django.utils import timezone

    from agent_client.canonical import signing_and_content_digests
    from agent_client.schema import parse_pcs
    from calibration.services import current_snapshot
    from ingest import store
    from ingest.services import Checked, audit_probability, new_record, stored_answer
    from policy.params import active_params_memo
    from policy.verification import verify_pcs
    from tenancy import keyring

    creds = keyring.credentials_memo.get("default")
    bodies = [b.encode() for b in signed_bodies(10**7, args.pcs)]
    now = timezone.now()
    params = active_params_memo.get("active")
    if args.audit_rate is not None:
        params = dataclasses.replace(params, audit_rate=args.audit_rate, bootstrap_audit_rate=args.audit_rate)
    snapshot = current_snapshot(creds.name)
    spent: dict[str, float] = {}
    spent_client = [0.0]  # this process's CPU within the insert stage (the rest is PostgreSQL and the wait)

    def timed(stage: str, work, clock=time.process_time):
        started = clock()
        result = work()
        spent[stage] = spent.get(stage, 0.0) + clock() - started
        return result

    for start in range(0, len(bodies), args.batch):
        chunk = bodies[start : start + args.batch]
        parsed = timed("parse", lambda chunk=chunk: [parse_pcs(b) for b in chunk])
        digests = timed("digests", lambda parsed=parsed: [signing_and_content_digests(p) for p in parsed])
        keys = timed("signature", lambda parsed=parsed, digests=digests: [
            keyring.check_signature(creds, d[0], p["sig"], now) for p, d in zip(parsed, digests, strict=True)])  # fmt: skip
        verdicts = timed("verify", lambda parsed=parsed: [verify_pcs(p, params, snapshot) for p in parsed])
        checked = timed("record", lambda parsed=parsed, digests=digests, keys=keys, verdicts=verdicts: [
            Checked(creds, p, v, params, new_record(creds, p, d[1], k, params, v, now, audit_probability(params, snapshot)))
            for p, d, k, v in zip(parsed, digests, keys, verdicts, strict=True)])  # fmt: skip

        def store_all(checked: list[Checked] = checked) -> None:
            with transaction.atomic():
                cpu = time.process_time()
                inserted = timed("insert", lambda: store.insert_many([c.record for c in checked]), time.perf_counter)
                spent_client[0] += time.process_time() - cpu
                timed("follow-up", lambda: [stored_answer(c, i) for c, i in zip(checked, inserted, strict=True)])

        store_all()
    total = sum(spent.values())
    insert_note = f"; of which this process's CPU {spent_client[0] / args.pcs * 1e6:.1f} µs (binding the values)"
    print(f"FLK batch stages: {args.pcs} PCS in batches of {args.batch}, one process, {os.cpu_count()} cores, "
          f"audit share {'as shipped' if args.audit_rate is None else args.audit_rate}, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    for stage, seconds in spent.items():
        note = insert_note if stage == "insert" else ""
        print(f"{stage:10s} {seconds / args.pcs * 1e6:7.1f} µs per PCS  ({seconds / total:5.1%}){note}")
    print(f"{'total':10s} {total / args.pcs * 1e6:7.1f} µs per PCS: at most {args.pcs / total * (os.cpu_count() or 1):,.0f} "
          f"PCS/s on {os.cpu_count()} cores for these stages alone")  # fmt: skip


if __name__ == "__main__":
    main()
