"""manage.py replay_wal: store every inbox WAL body that has no stored outcome."""

from __future__ import annotations

import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ingest import replay
from policy.params import NoActiveParams


class Command(BaseCommand):
    help = (
        "Verify and store every body in the inbox WAL (FLK_WAL_DIR) that has no stored outcome, after a crash "
        "or a database outage. Safe to run twice and alongside the service; SIGTERM stops it after the current "
        "batch. With --purge, also delete WAL segments past FLK_WAL_RETENTION_DAYS (never one holding an "
        "unstored body) and stored outcomes past the active dedup TTL."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, default=None, help="WAL directory (default: FLK_WAL_DIR)")
        parser.add_argument("--batch-size", type=int, default=replay.DEFAULT_BATCH, help="records per batch")
        parser.add_argument("--purge", action="store_true", help="then apply WAL retention and the dedup TTL")

    def handle(self, *args, dir: Path | None, batch_size: int, purge: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        wal_dir = dir if dir is not None else Path(settings.FLK_WAL_DIR)
        if dir is not None and not dir.is_dir():  # a mistyped path must not read as "nothing to replay"
            raise CommandError(f"--dir {dir} is not a directory")
        stop = {"requested": False}

        def on_term(signum, frame):  # finish the batch in hand, then stop: every stored row is committed
            stop["requested"] = True

        previous = signal.signal(signal.SIGTERM, on_term)
        try:
            report = replay.replay_wal(dir, batch_size=batch_size, should_stop=lambda: stop["requested"])
        except NoActiveParams as exc:
            raise CommandError("no VerifyParams version is active; activate one before replaying") from exc
        finally:
            signal.signal(signal.SIGTERM, previous)
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(report.skipped_by_reason.items())) or "none"
        self.stdout.write(
            f"replay_wal: {wal_dir}: {report.seen} records read, {report.stored} stored, {report.already_stored} already "
            f"stored, {report.skipped} skipped ({reasons})"
            + (" — interrupted by SIGTERM" if report.interrupted else "")
        )
        if purge and not report.interrupted:
            kept = replay.purge_wal_segments(dir)
            outcomes = replay.purge_expired_outcomes()
            self.stdout.write(
                f"retention: {len(kept.deleted)} segments deleted, {len(kept.kept_unstored)} kept with unstored "
                f"bodies, {outcomes} expired outcomes deleted"
            )
