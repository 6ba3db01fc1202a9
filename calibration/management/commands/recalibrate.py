"""manage.py recalibrate: rebuild calibration snapshots from the labels now."""

from __future__ import annotations

import math
import signal

from django.core.management.base import BaseCommand, CommandError

from calibration import services
from calibration.models import GLOBAL_SET
from calibration.monitors import WeightedShare


def _share(name: str, share: WeightedShare, empty: str) -> str:
    if share.estimate is None:
        return f"{name} n/a ({empty})"
    return (
        f"{name} {share.estimate:.3f} [{share.ci_low:.3f}, {share.ci_high:.3f}] "
        f"({share.labels} audit labels, n_eff {share.effective_n:.1f})"
    )


def _fmt(threshold: float | None) -> str:
    if threshold is None:
        return "none"
    return "inf" if math.isinf(threshold) else f"{threshold:.6f}"


def _same_threshold(old: float | None, new: float) -> bool:
    return old is not None and (old == new or (math.isinf(old) and math.isinf(new)))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _snapshot_change(result: services.RecalibrationResult) -> str:
    """What storing this set's snapshot changes, truthfully for a dry run: the threshold, or only bookkeeping."""
    if not result.changed:
        return "unchanged"
    verb = "would store" if result.dry_run else "stored"
    why = ", ".join(result.differences)
    if _same_threshold(result.old_threshold, result.new_threshold):
        return f"{verb} a new snapshot with the same threshold ({why})"
    return f"{verb} a new snapshot ({why})"


class Command(BaseCommand):
    help = (
        "Rebuild each tenant's calibration snapshot (and the global fallback set) from its labels. Run after "
        "bulk-importing labels, after changing delta or n_min, or to preview a delta with --dry-run; the "
        "recalibrate task does the same after new labels and on its schedule. Each tenant's power (share of anomalous "
        "PCS not accepted) and precision (share of PCS not accepted that are anomalous) follow, from its audit "
        "labels weighted by 1/inclusion probability, with 95 % intervals."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (the global set is rebuilt too).")
        parser.add_argument("--delta", type=float, help="Level to use instead of the active VerifyParams delta.")
        parser.add_argument("--dry-run", action="store_true", help="Print what would change; store nothing.")

    def handle(self, *args, tenant=None, delta=None, dry_run=False, **options):
        params = services.params_provider()()
        delta = params.delta if delta is None else delta
        if not 0.0 < delta < 1.0:
            raise CommandError(f"--delta must be within (0, 1), got {delta}")
        self._stop = False
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            known = services.calibrated_tenants()
            if tenant and tenant not in known:
                raise CommandError(
                    f"no labels and no snapshot for tenant {tenant!r} (it uses the global set until it has labels); "
                    f"tenants with labels: {', '.join(known) or 'none'}"
                )
            tenants = [tenant] if tenant else known
            changed = first = moved = done = 0
            for name in [*tenants, GLOBAL_SET]:
                if self._stop:
                    self.stderr.write("stopped by SIGTERM; the remaining tenants keep their snapshots")
                    break
                result = services.recalibrate_tenant(
                    name,
                    delta=delta,
                    n_min=params.n_min,
                    params_version=params.params_version,
                    formula=params.formula,
                    dry_run=dry_run,
                )
                done += 1
                changed += result.changed
                first += result.changed and result.old_threshold is None
                moved += (
                    result.changed
                    and result.old_threshold is not None
                    and not _same_threshold(result.old_threshold, result.new_threshold)
                )
                label = "global set" if name == GLOBAL_SET else name
                if name == GLOBAL_SET:
                    uses = f"is the fallback of tenants with n < {result.n_min}"
                elif result.source == "own":
                    uses = "uses own set"
                else:
                    uses = f"uses global fallback (own n < {result.n_min})"
                self.stdout.write(
                    f"{label}: n={result.n} threshold {_fmt(result.old_threshold)} -> {_fmt(result.new_threshold)} "
                    f"{uses}; {_snapshot_change(result)}"
                    + (f"; {result.skipped} labels without signals left out" if result.skipped else "")
                )
                if name != GLOBAL_SET:
                    figures = services.performance_figures(name)
                    self.stdout.write(
                        f"{label}: {_share('power', figures.power, 'no anomalous audit labels')}; "
                        f"{_share('precision', figures.precision, 'no audit labels of escalated or rejected PCS')}"
                    )
        finally:
            signal.signal(signal.SIGTERM, previous)
        # A set's first snapshot, a new threshold, and a new snapshot that only records another delta, formula or
        # version are told apart: only the second changes what is accepted.
        kinds = f"{first} first of its set, {moved} with a different threshold, {changed - first - moved} with the same"
        stored = "would be stored" if dry_run else "stored"
        summary = f"{_count(changed, 'new snapshot')} {stored} ({kinds})" + (
            " (dry run: nothing stored)" if dry_run else ""
        )
        self.stdout.write(f"recalibrated {_count(done, 'set')} at delta {delta:g}: {summary}")

    def _on_sigterm(self, signum, frame):
        self._stop = True
