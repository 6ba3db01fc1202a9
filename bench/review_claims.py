"""Claiming and labelling throughput of the review queue with several reviewers at once.

Creates a throwaway PostgreSQL database, migrates it, stores ``--items`` escalated PCS records with their
review items, then ``--reviewers`` threads (one database connection each) loop claim_next -> label_item
until the queue is empty. Prints items/s, claim latency percentiles and how many items were labelled more
than once (must be 0); the database is dropped at the end.

    .venv/bin/python bench/review_claims.py [--items 2000] [--reviewers 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--reviewers", type=int, default=4)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()

    db_name = f"bench_review_{os.getpid()}"
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    os.environ.update({
        "DATABASE_URL": f"{args.pg}/{db_name}",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_SETTINGS_MODULE": "flk_site.settings",
        "FLK_ALLOW_UNSIGNED": "1",
        "FLK_VAR_DIR": tempfile.mkdtemp(prefix="flk-review-bench-"),
        "FLK_REVIEW_SECOND_OPINION_RATE": "0",
    })  # fmt: skip
    os.environ.pop("REDIS_URL", None)  # recalibration runs in-process (eager) and is not what is measured
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        _run(args.items, args.reviewers)
        connection.close()
    finally:
        with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _run(n_items: int, n_reviewers: int) -> None:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.utils import timezone

    from flk_site.testing import make_pcs
    from ingest.models import PcsRecord
    from review import services
    from review.models import ReviewItem
    from tenancy.models import Tenant

    settings.FLK_CALIBRATION_DEBOUNCE_SECONDS = 3600.0  # one recalibration per burst, not per label
    tenant = Tenant.objects.get(name="default")
    now = timezone.now()
    for _i in range(n_items):
        pcs = make_pcs(degraded=True)
        record = PcsRecord.objects.create(
            tenant=tenant, pcs_id=pcs["pcs_id"], shard_id=pcs["shard_id"], epoch=pcs["epoch"], signed_digest="0" * 64,
            body=pcs, d_hat=pcs["D_hat"], coh_star=pcs["coh_star"], r=pcs["r"], budget=pcs["budget"],
            regime=pcs["regime"], recomputed_d_hat=pcs["D_hat"], score=0.3, status_code=202, decision="escalate",
            response={}, params_version=1, received_at=now, verified_at=now,
        )  # fmt: skip
        ReviewItem.objects.create(record=record, tenant="default", pcs_id=pcs["pcs_id"], shard_id=pcs["shard_id"],
                                  decision="escalate", regime=pcs["regime"], score=0.3, received_at=now)  # fmt: skip
    users = [User.objects.create_user(f"reviewer{i}") for i in range(n_reviewers)]
    claim_ms: list[float] = []
    taken: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n_reviewers)

    def work(user) -> None:
        barrier.wait()
        try:
            while True:
                t0 = time.perf_counter()
                item = services.claim_next(user)
                elapsed = (time.perf_counter() - t0) * 1000
                if item is None:
                    return
                services.label_item(user, item.pk, "benign")
                with lock:
                    claim_ms.append(elapsed)
                    taken.append(item.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    claim_ms.sort()

    def pct(p: float) -> float:
        return claim_ms[min(len(claim_ms) - 1, int(p * len(claim_ms)))]

    twice = sum(1 for _pk, n in Counter(taken).items() if n > 1)
    print(f"{n_reviewers} reviewers, {n_items} items: {len(taken) / wall:.0f} claim+label/s over {wall:.2f} s")
    print(f"claim latency ms: p50 {pct(0.5):.2f}  p95 {pct(0.95):.2f}  p99 {pct(0.99):.2f}")
    print(f"labelled: {len(set(taken))} of {n_items}; labelled more than once: {twice}")


if __name__ == "__main__":
    main()
