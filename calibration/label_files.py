"""Labels to and from files (CSV and JSON Lines): what ``export_labels`` writes and ``import_labels`` reads.

A file row holds every field of a ``CalibrationLabel`` (``LABEL_FIELDS``), signals included, so a round trip
through an empty database reproduces the labels. An import never claims audit provenance for a label that was
not drawn at random: a row keeps provenance "audit" only with an inclusion probability in (0, 1] (as this
product's export writes it); an audit row without one, and any row of another or no provenance except
"escalation", becomes "imported", which never enters a quantile. Escalation labels keep theirs: they claim no
random draw and stay out of quantiles too.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from calibration.models import CalibrationLabel, Label, Provenance
from calibration.services import LABEL_FIELDS, schedule_recalibration

FORMATS = ("csv", "jsonl")
REQUIRED = ("tenant", "pcs_id", "label", "labelled_at")  # a row without a provenance is stored as "imported"
DECISIONS = ("", "accept", "escalate", "reject")
SIGNALS = ("D_hat", "coh_star", "r")
COMPARED = tuple(f for f in LABEL_FIELDS if f != "origin")  # what "unchanged" means: every field but the origin
BATCH = 1000


class LabelFileError(ValueError):
    """Rows that cannot be imported; ``problems`` name each line and field. Nothing was changed."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        shown = self.problems[:20]
        more = f"\n... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{len(self.problems)} problem(s), nothing imported:\n" + "\n".join(shown) + more)


def format_of(path: str, given: str | None) -> str:
    """The file format: ``given``, else from the name (.csv, .jsonl or .ndjson); CSV when it cannot tell."""
    if given:
        if given not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {given!r}")
        return given
    return "jsonl" if path.lower().endswith((".jsonl", ".ndjson")) else "csv"


# --- Export ------------------------------------------------------------------------------------------------


def label_rows(
    tenants: Sequence[str] | None = None,
    *,
    provenance: str = "",
    decision: str = "",
    pcs_prefix: str = "",
    labelled_before: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Every label (of ``tenants`` when given, narrowed by the other filters) as a dict of ``LABEL_FIELDS``.

    Ordered by tenant and pcs_id. ``labelled_before`` keeps labels given before that time.
    """
    query = CalibrationLabel.objects.order_by("tenant", "pcs_id")
    if tenants:
        query = query.filter(tenant__in=tenants)
    if provenance:
        query = query.filter(provenance=provenance)
    if decision:
        query = query.filter(decision=decision)
    if pcs_prefix:
        query = query.filter(pcs_id__startswith=pcs_prefix)
    if labelled_before is not None:
        query = query.filter(labelled_at__lte=labelled_before)
    yield from query.values(*LABEL_FIELDS).iterator(chunk_size=BATCH)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return repr(value)  # repr round-trips a float exactly
    return str(value)


def write_labels(rows: Iterable[dict[str, Any]], out: IO[str], fmt: str) -> int:
    """Write ``rows`` to ``out`` as CSV (a header, then one row per label) or JSON Lines; returns the count."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(LABEL_FIELDS)
        for row in rows:
            writer.writerow([_csv_cell(row[f]) for f in LABEL_FIELDS])
            count += 1
    else:
        for row in rows:
            values = {f: row[f].isoformat() if isinstance(row[f], datetime) else row[f] for f in LABEL_FIELDS}
            out.write(json.dumps(values, sort_keys=True, allow_nan=False) + "\n")
            count += 1
    return count


# --- Reading and validating ----------------------------------------------------------------------------------


def read_rows(text: str, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, raw row) for each row of the file; a row that is not even a row raises LabelFileError."""
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""), restkey="\x00extra")
        if reader.fieldnames is None:
            return
        unknown = [f for f in reader.fieldnames if f not in LABEL_FIELDS]
        missing = [f for f in REQUIRED if f not in reader.fieldnames]
        if unknown or missing:
            problems = [f"line 1, field {f}: unknown column" for f in unknown]
            problems += [f"line 1, field {f}: required column missing" for f in missing]
            raise LabelFileError(problems)
        start = 2
        for row in reader:
            if "\x00extra" in row:
                raise LabelFileError([f"line {start}: more cells than the header has columns"])
            yield start, row
            start = reader.line_num + 1
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise LabelFileError([f"line {number}: not JSON ({exc.msg})"]) from exc
        if not isinstance(row, dict):
            raise LabelFileError([f"line {number}: not a JSON object"])
        yield number, row


class _Bad(ValueError):
    pass


def _text(value: Any, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _Bad(f"must be text, got {value!r}")
    if "\x00" in value:
        raise _Bad("contains a NUL character")
    if required and not value:
        raise _Bad("required")
    if len(value) > limit:
        raise _Bad(f"longer than {limit} characters")
    return value


def _number(value: Any, csv_text: bool) -> float | None:
    if value is None or (csv_text and value == ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (isinstance(value, str) and not csv_text):
        raise _Bad(f"must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError as exc:
        raise _Bad(f"must be a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise _Bad(f"must be a finite number, got {value!r}")
    return number


def _in(number: float | None, low: float, high: float, *, open_low: bool) -> float | None:
    if number is not None and not ((low < number if open_low else low <= number) and number <= high):
        raise _Bad(f"must be within {'(' if open_low else '['}{low:g}, {high:g}], got {number!r}")
    return number


def _integer(value: Any, csv_text: bool) -> int | None:
    number = _number(value, csv_text)
    if number is None:
        return None
    if number != int(number) or number < 0:
        raise _Bad(f"must be a whole number >= 0, got {value!r}")
    return int(number)


def _flag(value: Any, csv_text: bool) -> bool | None:
    if value is None or (csv_text and value == ""):
        return None
    if isinstance(value, bool):
        return value
    if csv_text and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise _Bad(f"must be true or false, got {value!r}")


def _moment(value: Any, *, required: bool = False) -> datetime | None:
    if value is None or value == "":
        if required:
            raise _Bad("required (an ISO 8601 time with its UTC offset)")
        return None
    if not isinstance(value, str):
        raise _Bad(f"must be an ISO 8601 time, got {value!r}")
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        raise _Bad(f"must be an ISO 8601 time, got {value!r}")
    if timezone.is_naive(moment):
        raise _Bad(f"needs its UTC offset (e.g. +00:00), got {value!r}")
    return moment


def _signals(value: Any, csv_text: bool) -> dict[str, float] | None:
    if value is None or (csv_text and value == ""):
        return None
    if csv_text:
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise _Bad(f"must be a JSON object, got {value!r}") from exc
    if not isinstance(value, dict) or set(value) != set(SIGNALS):
        raise _Bad(f"must be a JSON object with exactly {', '.join(SIGNALS)}, got {value!r}")
    return {name: _number(value[name], False) for name in SIGNALS}  # type: ignore[misc]


def clean_row(number: int, raw: dict[str, Any], csv_text: bool) -> tuple[dict[str, Any], list[str]]:
    """The typed values of one file row, and the problems found (each naming its line and field)."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name in raw:
        if name not in LABEL_FIELDS:
            problems.append(f"line {number}, field {name}: unknown field")
    parsers = {
        "tenant": lambda v: _text(v, 64, required=True),
        "pcs_id": lambda v: _text(v, 64, required=True),
        "score": lambda v: _number(v, csv_text),
        "formula_key": lambda v: _text(v, 16),
        "signals": lambda v: _signals(v, csv_text),
        "label": lambda v: _choice(v, Label.values),
        "provenance": lambda v: _text(v, 16),
        "inclusion_probability": lambda v: _number(v, csv_text),
        "decision": lambda v: _choice(v, DECISIONS),
        "p_value": lambda v: _in(_number(v, csv_text), 0.0, 1.0, open_low=False),
        "flagged": lambda v: _flag(v, csv_text),
        "snapshot_n": lambda v: _integer(v, csv_text),
        "delta": lambda v: _in(_number(v, csv_text), 0.0, 1.0, open_low=True),
        "received_at": lambda v: _moment(v),
        "origin": lambda v: _text(v, 200),
        "labelled_at": lambda v: _moment(v, required=True),
    }
    for name, parse in parsers.items():
        try:
            values[name] = parse(raw.get(name))
        except _Bad as exc:
            problems.append(f"line {number}, field {name}: {exc}")
    return values, problems


def _choice(value: Any, choices: Sequence[str]) -> str:
    value = "" if value is None else value
    if value not in choices:
        raise _Bad(f"must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def honest_provenance(values: dict[str, Any]) -> bool:
    """Set the provenance a row may keep; True when an audit claim was downgraded to "imported".

    Only a row drawn at random with a known probability may claim the audit sample: provenance "audit" and an
    inclusion probability in (0, 1]. An escalation label keeps its provenance (it claims no random draw).
    """
    probability = values["inclusion_probability"]
    valid = probability is not None and 0.0 < probability <= 1.0
    claimed = values["provenance"]
    if not valid:
        values["inclusion_probability"] = None
    if claimed == Provenance.AUDIT and valid:
        return False
    if claimed == Provenance.ESCALATION:
        return False
    values["provenance"] = Provenance.IMPORTED
    return claimed == Provenance.AUDIT


# --- Import ---------------------------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_tenants: int = 0  # rows of tenants outside --tenant
    downgraded: int = 0  # audit claims without an inclusion probability in (0, 1]: stored as "imported"
    tenants: set[str] = field(default_factory=set)
    dry_run: bool = False


def import_labels(
    text: str, fmt: str, *, origin: str, tenants: Sequence[str] | None = None, dry_run: bool = False
) -> ImportSummary:
    """Validate every row of a label file, then upsert them in one transaction; any bad row changes nothing.

    Idempotent: a row equal to the stored label in every field but ``origin`` is left alone, so the same file
    imported twice changes nothing. A changed or new label gets ``origin`` (the file and the time of the import;
    the row's own origin is kept after it). Raises LabelFileError naming each bad line and field.
    """
    summary = ImportSummary(dry_run=dry_run)
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    first_line: dict[tuple[str, str], int] = {}
    for number, raw in read_rows(text, fmt):
        values, bad = clean_row(number, raw, csv_text=fmt == "csv")
        problems += bad
        summary.rows += 1
        if bad:
            continue
        key = (values["tenant"], values["pcs_id"])
        if key in first_line:
            problems.append(
                f"line {number}, field pcs_id: {key[1]!r} of tenant {key[0]!r} is on line {first_line[key]} too"
            )
            continue
        first_line[key] = number
        if tenants and values["tenant"] not in tenants:
            summary.skipped_tenants += 1
            continue
        summary.downgraded += honest_provenance(values)
        rows.append(values)
    if problems:
        raise LabelFileError(problems)
    with transaction.atomic():
        changed = _changed_rows(rows, summary)
        for row in changed:
            row["origin"] = f"{origin}; {row['origin']}"[:200] if row["origin"] else origin[:200]
        for start in range(0, len(changed), BATCH):
            # INSERT ... ON CONFLICT (tenant, pcs_id) DO UPDATE: the same upsert as record_label.
            CalibrationLabel.objects.bulk_create(
                [CalibrationLabel(**row) for row in changed[start : start + BATCH]],
                update_conflicts=True,
                unique_fields=["tenant", "pcs_id"],
                update_fields=[f for f in LABEL_FIELDS if f not in ("tenant", "pcs_id")],
            )
        summary.tenants = {row["tenant"] for row in changed}
        if dry_run:
            transaction.set_rollback(True)
        else:
            for name in sorted(summary.tenants):
                transaction.on_commit(lambda name=name: schedule_recalibration(name), robust=True)
    return summary


def _changed_rows(rows: list[dict[str, Any]], summary: ImportSummary) -> list[dict[str, Any]]:
    """The rows that differ from the stored labels (new or changed), counting each kind into ``summary``."""
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(rows), BATCH):
        keys = Q()
        for row in rows[start : start + BATCH]:
            keys |= Q(tenant=row["tenant"], pcs_id=row["pcs_id"])
        # FOR UPDATE: a reviewer relabelling one of these PCS waits for the import, so the comparison below
        # is not made against a label that changes before the upsert.
        for current in CalibrationLabel.objects.select_for_update().filter(keys).values(*LABEL_FIELDS):
            stored[(current["tenant"], current["pcs_id"])] = current
    changed = []
    for row in rows:
        current = stored.get((row["tenant"], row["pcs_id"]))
        if current is None:
            summary.created += 1
        elif all(current[f] == row[f] for f in COMPARED):
            summary.unchanged += 1
            continue
        else:
            summary.updated += 1
        changed.append(row)
    return changed
