"""manage.py export_labels: every calibration label, signals included, to CSV or JSON Lines."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from calibration import label_files


class Command(BaseCommand):
    help = (
        "Write every calibration label (all fields, signals and inclusion probabilities included) as CSV or JSON "
        "Lines, to a file or stdout. Run it to back labels up, to move them to another installation, or before "
        "a database migration; import_labels reads the file back."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", action="append", help="Only this tenant's labels (repeat for several).")
        parser.add_argument(
            "--format", choices=label_files.FORMATS, help="csv or jsonl (default: from the file name, else csv)."
        )
        parser.add_argument("-o", "--output", default="-", help="File to write (default: stdout).")

    def handle(self, *args, tenant=None, format=None, output="-", **options):
        fmt = label_files.format_of(output, format)
        rows = label_files.label_rows(tenant)
        if output == "-":
            count = label_files.write_labels(rows, self.stdout, fmt)
            target = "stdout"
        else:
            try:
                with open(output, "w", encoding="utf-8", newline="") as out:
                    count = label_files.write_labels(rows, out, fmt)
            except OSError as exc:
                raise CommandError(f"cannot write {output}: {exc.strerror}") from exc
            target = output
        scope = f" of {', '.join(tenant)}" if tenant else ""
        # The summary goes to stderr so that stdout stays the file itself.
        self.stderr.write(f"Exported {count} label{'s' if count != 1 else ''}{scope} to {target} ({fmt}).")
