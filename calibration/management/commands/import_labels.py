"""manage.py import_labels: labels from a CSV or JSON Lines file, validated, idempotent, never falsely "audit"."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from calibration import label_files


class Command(BaseCommand):
    help = (
        "Read calibration labels from a CSV or JSON Lines file (as export_labels writes it) and store them. Run it "
        "to restore a backup, move labels between installations, or seed a new tenant. Every row is checked "
        "first; one bad row and nothing is stored. Importing the same file twice changes nothing. A row keeps "
        "provenance 'audit' only with an inclusion probability in (0, 1]; others become 'imported', which never "
        "enters a calibration quantile. Each stored label's origin names the file and the time of the import."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The file to read.")
        parser.add_argument("--tenant", action="append", help="Only rows of this tenant (repeat for several).")
        parser.add_argument(
            "--format", choices=label_files.FORMATS, help="csv or jsonl (default: from the file name, else csv)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Check the file and count; store nothing.")

    def handle(self, *args, path, tenant=None, format=None, dry_run=False, **options):
        fmt = label_files.format_of(path, format)
        try:
            with open(path, encoding="utf-8", newline="") as source:
                text = source.read()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text (byte {exc.start})") from exc
        origin = f"import:{os.path.basename(path)}@{timezone.now().isoformat(timespec='seconds')}"
        try:
            summary = label_files.import_labels(text, fmt, origin=origin, tenants=tenant, dry_run=dry_run)
        except label_files.LabelFileError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        parts = [f"{summary.created} new", f"{summary.updated} updated", f"{summary.unchanged} unchanged"]
        if summary.skipped_tenants:
            parts.append(f"{summary.skipped_tenants} of other tenants skipped")
        self.stdout.write(
            f"{'Would import' if dry_run else 'Imported'} {path} ({fmt}): {summary.rows} rows, {', '.join(parts)}; "
            f"{summary.downgraded} downgraded from audit to imported (no inclusion probability in (0, 1])."
        )
