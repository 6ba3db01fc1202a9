"""A year of one tenant's traffic through the real service functions, then months with a benign shift.

What it drives, in one process on a database of its own (migrated at start, dropped at the end unless --keep)
and Redis db 11: every PCS goes through ``ingest.services.submit_pcs`` (WAL append, parse, verify against the
tenant's calibration, store, enqueue for review); at the end of each simulated day a reviewer claims and labels
every item the queue hands out (``review.services.claim_next`` / ``label_item``, with the true label); then the
beat's tasks run once: ``calibration.tasks.recalibrate``, ``check_drift`` and ``check_miscoverage`` (which also
records power and precision). The service's clock (``django.utils.timezone.now``) is the simulated one, so
windows, the 180-day calibration window and the monitors see a year go by. The active VerifyParams are the
defaults: delta 0.05, reject_delta 0.005, audit share 2 % (20 % until n_min = 100), calibration set capped
at 5,000 labels within 180 days.

Traffic (``flk_site.traffic``): every PCS passes its checks; benign signals from ``BENIGN``, a share of
anomalous PCS from ``BENIGN.shifted(--anomaly-shift)``; after ``--months`` the benign law becomes
``BENIGN.shifted(--shift)`` for ``--shift-months``. Prints per month, from the ground truth: the share of benign
PCS not accepted (the false-escalation rate the guarantee bounds by delta) with its Clopper–Pearson 95 %
interval, and power (share of anomalous PCS not accepted) with its interval; from the monitors: days with a
miscoverage alarm, an audit alarm, a drift alarm, and the power the tenant's audit labels estimate.

    .venv/bin/python bench/calibration_year.py [--per-day 50] [--months 12] [--shift-months 6] [--seed 7]

Daily recalibration and monitor runs (the beat runs them hourly / 6-hourly); the recalibration a burst of
labels schedules is the same rebuild, run once after the day's labelling.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TENANT = "year"
START = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class Month:
    """One calendar month's ground truth and what the monitors said."""

    name: str
    shifted: bool
    benign: int = 0
    benign_stopped: int = 0  # escalated or rejected
    anomalous: int = 0
    anomalous_stopped: int = 0
    days: int = 0
    miscoverage_alarm_days: int = 0
    audit_alarm_days: int = 0
    drift_alarm_days: int = 0
    first_drift_alarm: str = ""
    n: int = 0
    threshold: float | None = None
    audit_power: float | None = None
    audit_power_ci: tuple[float, float] = (0.0, 1.0)
    labels: int = 0
    seconds: float = 0.0
    alarms: list[str] = field(default_factory=list)


class SimClock:
    """The service's clock: ``django.utils.timezone.now`` returns ``now`` while the bench runs."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def month_start(index: int) -> datetime:
    return datetime(START.year + index // 12, index % 12 + 1, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=50, help="PCS a day (default 50)")
    parser.add_argument("--months", type=int, default=12, help="stationary months (default 12)")
    parser.add_argument("--shift-months", type=int, default=6, help="months with the benign law shifted (default 6)")
    parser.add_argument("--shift", type=float, default=0.1, help="shift of the benign law (flk_site.traffic)")
    parser.add_argument("--anomalous-share", type=float, default=0.05)
    parser.add_argument("--anomaly-shift", type=float, default=0.5, help="anomalous law: BENIGN.shifted(this)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="flk_bench_year")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--json", help="also write the monthly figures to this file")
    args = parser.parse_args()

    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db}"')
    work = Path(tempfile.mkdtemp(prefix="flk-year-bench-"))
    os.environ.update({
        "DATABASE_URL": f"{args.pg}/{args.db}",
        "REDIS_URL": args.redis,
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_SETTINGS_MODULE": "flk_site.settings",
        "FLK_ALLOW_UNSIGNED": "1",
        "TOKEN_RATE": "1000000",
        "FLK_VAR_DIR": str(work / "var"),
        "FLK_WAL_DIR": str(work / "wal"),
        # A simulated year arrives within minutes of real time: the WAL's per-hour byte budgets would refuse it.
        "FLK_WAL_TENANT_BUDGET_BYTES": str(16 * 2**30),
        "FLK_WAL_TOTAL_BUDGET_BYTES": str(32 * 2**30),
        "FLK_REVIEW_SECOND_OPINION_RATE": "0",  # one reviewer
    })  # fmt: skip
    started = time.monotonic()
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        logging.disable(logging.WARNING)  # the service's JSON log lines (alarms included) would drown the table
        months = simulate(args)
        connection.close()
    finally:
        if not args.keep:
            with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)
    report(args, months, time.monotonic() - started)


def simulate(args: argparse.Namespace) -> list[Month]:
    from django.contrib.auth.models import User
    from django.utils import timezone

    from calibration import services as calibration
    from calibration import tasks
    from calibration.models import DriftReport, MiscoverageReport, PerformanceReport
    from flk_site.celery import app
    from flk_site.traffic import BENIGN, draw_pcs
    from ingest.services import submit_pcs
    from review.services import claim_next, label_item
    from tenancy.models import Tenant

    app.conf.task_always_eager = True  # tasks run here, not on a worker listening to Redis
    # A burst of labels schedules one debounced recalibration; the bench runs that rebuild once after each day's
    # labelling (tasks.recalibrate below) instead of after every label, as eager tasks would.
    calibration.schedule_recalibration = lambda tenant: None
    clock = SimClock(START)
    timezone.now = clock

    Tenant.objects.get_or_create(name=TENANT, defaults={"sign_alg": "none"})
    reviewer = User.objects.create_user("reviewer", is_staff=True)
    rng = np.random.default_rng(args.seed)
    shifted_law = BENIGN.shifted(args.shift)
    anomalous_law = BENIGN.shifted(args.anomaly_shift)
    truth: dict[str, bool] = {}
    months: list[Month] = []
    for index in range(args.months + args.shift_months):
        month = Month(month_start(index).strftime("%Y-%m"), shifted=index >= args.months)
        months.append(month)
        tick = time.monotonic()
        day = month_start(index)
        while day < month_start(index + 1):
            law = shifted_law if month.shifted else BENIGN
            for epoch in range(args.per_day):
                clock.now = day + timedelta(seconds=(epoch + 0.5) * 86400 / args.per_day)
                anomalous = bool(rng.random() < args.anomalous_share)
                pcs = draw_pcs(rng, anomalous_law if anomalous else law, shard_id=f"{day:%Y-%m-%d}", epoch=epoch,
                               sent_at=clock.now)  # fmt: skip
                answer = submit_pcs(TENANT, "application/json", json.dumps(pcs).encode())
                if answer.status not in (200, 202):
                    raise RuntimeError(f"submit answered {answer.status}: {json.dumps(answer.body)[:300]}")
                truth[pcs["pcs_id"]] = anomalous
                stopped = answer.body["decision"] != "accept"
                if anomalous:
                    month.anomalous += 1
                    month.anomalous_stopped += stopped
                else:
                    month.benign += 1
                    month.benign_stopped += stopped
            # End of the day: the reviewer empties the queue, then the beat's tasks run once.
            clock.now = day + timedelta(hours=23, minutes=30)
            while (item := claim_next(reviewer)) is not None:
                label_item(reviewer, item.pk, "anomalous" if truth[item.pcs_id] else "benign")
                month.labels += 1
            clock.now = day + timedelta(hours=23, minutes=45)
            tasks.recalibrate()
            tasks.check_drift()
            tasks.check_miscoverage()
            month.days += 1
            miscoverage = MiscoverageReport.objects.filter(tenant=TENANT).order_by("-id").first()
            drift = DriftReport.objects.filter(tenant=TENANT).order_by("-id").first()
            if miscoverage is not None and miscoverage.alarm:
                month.miscoverage_alarm_days += 1
            if miscoverage is not None and miscoverage.audit_alarm:
                month.audit_alarm_days += 1
            if drift is not None and drift.created_at >= day and drift.drift_detected:
                month.drift_alarm_days += 1
                month.first_drift_alarm = month.first_drift_alarm or f"{drift.alarm_at:%Y-%m-%d}"
            day += timedelta(days=1)
        snapshot = calibration.current_snapshot(TENANT)
        if snapshot is not None:
            month.n, month.threshold = snapshot.n, snapshot.threshold
        performance = PerformanceReport.objects.filter(tenant=TENANT).order_by("-id").first()
        if performance is not None and performance.power is not None:
            month.audit_power = performance.power
            month.audit_power_ci = (performance.power_ci_low, performance.power_ci_high)
        month.seconds = time.monotonic() - tick
        print(f"{month.name}: {month.benign + month.anomalous} PCS, {month.labels} labels, {month.seconds:.0f} s",
              file=sys.stderr, flush=True)  # fmt: skip
    return months


def report(args: argparse.Namespace, months: list[Month], seconds: float) -> None:
    from calibration.monitors import clopper_pearson

    total = sum(m.benign + m.anomalous for m in months)
    print(
        f"calibration year: {args.per_day} PCS a day ({args.anomalous_share:.0%} anomalous, BENIGN.shifted("
        f"{args.anomaly_shift:g})), {args.months} months stationary then {args.shift_months} with the benign law "
        f"shifted by {args.shift:g}; default VerifyParams (delta 0.05, audit 2 %, 20 % until n_min 100); "
        f"seed {args.seed}; {total:,} PCS in {seconds / 60:.1f} min"
    )
    print()
    print("| month | benign | false escalation [95 % CI] | n | threshold | anomalous | power [95 % CI] "
          "| power from audit labels | miscoverage alarm days | audit alarm days | drift alarm days (first) |")  # fmt: skip
    print("|" + " --- |" * 11)
    for m in months:
        low, high = clopper_pearson(m.benign_stopped, m.benign)
        plow, phigh = clopper_pearson(m.anomalous_stopped, m.anomalous)
        rate = m.benign_stopped / m.benign if m.benign else float("nan")
        power = m.anomalous_stopped / m.anomalous if m.anomalous else float("nan")
        threshold = "—" if m.threshold is None else f"{m.threshold:.3f}"
        audit_power = "—" if m.audit_power is None else (
            f"{m.audit_power:.2f} [{m.audit_power_ci[0]:.2f}, {m.audit_power_ci[1]:.2f}]")  # fmt: skip
        drift = f"{m.drift_alarm_days}" + (f" ({m.first_drift_alarm})" if m.first_drift_alarm else "")
        print(
            f"| {m.name}{' shifted' if m.shifted else ''} | {m.benign} | {rate:.3f} [{low:.3f}, {high:.3f}] | {m.n} "
            f"| {threshold} | {m.anomalous} | {power:.2f} [{plow:.2f}, {phigh:.2f}] | {audit_power} "
            f"| {m.miscoverage_alarm_days}/{m.days} | {m.audit_alarm_days}/{m.days} | {drift} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps([m.__dict__ for m in months], default=str, indent=1))


if __name__ == "__main__":
    main()
