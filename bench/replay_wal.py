"""Benchmark: replay of N inbox WAL records (signed PCS without a stored outcome) into PostgreSQL.

Usage: .venv/bin/python bench/replay_wal.py [--records 100000] [--batch-size 1000]

Runs against a scratch database (FLK_BENCH_DB_NAME, default bench_flk_replay, created and migrated if
missing, on the server of DATABASE_URL) and a temporary WAL directory; prints records/s for the first
replay (everything to store) and for a second replay (everything already stored).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flk_site.test_settings")
os.environ.setdefault("FLK_TEST_DB_NAME", os.environ.get("FLK_BENCH_DB_NAME", "bench_flk_replay"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4, help="replay threads (FLK_REPLAY_WORKERS)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    # keepdb: the scratch database is created and migrated once, then reused by later runs.
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True)

    from flk_site.testing import ensure_defaults, make_pcs, signed
    from ingest import replay, wal
    from ingest.models import PcsRecord
    from tenancy.models import SigningKey, Tenant

    ensure_defaults()
    tenant_name = f"bench-replay-{os.getpid()}"
    tenant = Tenant.objects.create(name=tenant_name, sign_alg="hmac")
    SigningKey.objects.create(tenant=tenant, key_id="k1", algorithm="hmac", secret="bench-secret")
    wal_dir = Path(tempfile.mkdtemp(prefix="flk-bench-wal-"))
    try:
        started = time.perf_counter()
        writer = wal.WalWriter(wal_dir, segment_bytes=64 * 1024 * 1024, segment_seconds=3600)
        import json

        chunk: list[bytes] = []
        for i in range(args.records):
            pcs = signed(make_pcs(shard_id=f"bench-{os.getpid()}-{i}"), key=b"bench-secret")
            chunk.append(wal.encode_record(tenant_name, json.dumps(pcs).encode(), timezone.now()))
            if len(chunk) == 5000:
                writer.append(b"".join(chunk))
                chunk = []
        if chunk:
            writer.append(b"".join(chunk))
        writer.close()
        print(f"wrote {args.records} WAL records in {time.perf_counter() - started:.1f} s "
              f"({sum(p.stat().st_size for p in wal.segments(wal_dir)) / 1e6:.1f} MB)")  # fmt: skip

        for label in ("first replay (all new)", "second replay (all stored)"):
            t0 = time.perf_counter()
            report = replay.replay_wal(wal_dir, batch_size=args.batch_size, workers=args.workers)
            elapsed = time.perf_counter() - t0
            print(f"{label}: {report.seen} records, {report.stored} stored, {report.already_stored} already stored, "
                  f"{report.skipped} skipped in {elapsed:.1f} s = {report.seen / elapsed:,.0f} records/s")  # fmt: skip
    finally:
        PcsRecord.objects.filter(tenant=tenant).delete()
        tenant.delete()
        for path in wal.segments(wal_dir):
            path.unlink()
        wal_dir.rmdir()


if __name__ == "__main__":
    main()
