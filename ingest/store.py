"""Writing and reading stored PCS outcomes; the unique (tenant, pcs_id) constraint is the dedup."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, InterfaceError, NotSupportedError, OperationalError, connection, connections

from ingest.models import PcsRecord

_TABLE = PcsRecord._meta.db_table
_COLUMNS = (
    "tenant_id", "pcs_id", "shard_id", "epoch", "attempt", "signed_digest", "key_id", "body",
    "d_hat", "coh_star", "r", "budget", "regime", "recomputed_d_hat", "score", "audit_sample",
    "audit_probability", "status_code", "decision", "response", "params_version", "received_at", "verified_at",
)  # fmt: skip
# One statement, one round trip: the first writer inserts; a concurrent or later writer of the same
# (tenant, pcs_id) inserts nothing and learns it lost from the empty RETURNING. PostgreSQL makes a
# concurrent inserter wait for the winner's commit, so the loser's follow-up read sees the winner's row.
_INSERT = (
    f"INSERT INTO {_TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "
    f"ON CONFLICT (tenant_id, pcs_id) DO NOTHING RETURNING id"
)


# PostgreSQL: the same insert, for one row or many, prepared server-side. Its commit waits for PostgreSQL's
# WAL flush like any other: an answered 200 or 202 means the outcome row survives a PostgreSQL crash, so a
# GET or a resubmission after the crash finds it without a replay. Every value is cast to its column's type
# because an untyped parameter in a SELECT or VALUES list would otherwise be read as text.
@functools.cache
def _casts() -> str:
    values = []
    for column in _COLUMNS:
        field = PcsRecord._meta.get_field(column.removesuffix("_id") if column == "tenant_id" else column)
        values.append(f"%s::{field.cast_db_type(connection)}")
    return ", ".join(values)


# The statement of the request path, for one row. A loser of the insert (a replay, mostly) gets the stored
# row in the same round trip. That row is read with the statement's snapshot: if its writer committed after
# the snapshot was taken (a concurrent first delivery), neither part returns a row, and the caller reads it
# again. Only the unique (tenant, pcs_id) index starts with the tenant (see PcsRecord), so the lookup is
# one index probe whatever plan PostgreSQL keeps for the prepared statement.
@functools.cache
def _insert_one_sql() -> str:
    return (
        f"WITH new AS (INSERT INTO {_TABLE} ({', '.join(_COLUMNS)}) SELECT {_casts()} "
        f"ON CONFLICT (tenant_id, pcs_id) DO NOTHING RETURNING id) "
        f"SELECT id, NULL, NULL, NULL FROM new UNION ALL "
        f"SELECT id, status_code, response, signed_digest FROM {_TABLE} "
        f"WHERE tenant_id = %s::bigint AND pcs_id = %s::text AND NOT EXISTS (SELECT FROM new)"
    )


# The same for many rows (the WAL replay): each row's key comes back with its new id, or with the stored
# row when it lost. The stored rows are looked up by a LATERAL subquery with LIMIT 1, one index probe per
# row. It costs PostgreSQL about 20 µs more than the one-row form for a single row, so requests keep that.
@functools.cache
def _insert_rows_sql(rows: int) -> str:
    columns = ", ".join(_COLUMNS)
    return _numbered(
        f"WITH v ({columns}) AS (VALUES {', '.join([f'({_casts()})'] * rows)}), "
        f"new AS (INSERT INTO {_TABLE} ({columns}) SELECT v.* FROM v "
        f"ON CONFLICT (tenant_id, pcs_id) DO NOTHING RETURNING id, tenant_id, pcs_id) "
        f"SELECT id, tenant_id, pcs_id, NULL::smallint, NULL::jsonb, NULL::varchar FROM new UNION ALL "
        f"SELECT stored.* FROM v CROSS JOIN LATERAL (SELECT id, tenant_id, pcs_id, status_code, response, "
        f"signed_digest FROM {_TABLE} WHERE tenant_id = v.tenant_id AND pcs_id = v.pcs_id LIMIT 1) AS stored "
        f"WHERE NOT EXISTS (SELECT FROM new WHERE new.tenant_id = v.tenant_id AND new.pcs_id = v.pcs_id)"
    )


class _PreparingCursor(psycopg.Cursor):
    """Server-side binding, and every statement prepared at once (Django turns psycopg's auto-prepare off)."""

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = True, binary: bool | None = None):
        return super().execute(query, params, prepare=prepare, binary=binary)


class _PreparingRawCursor(psycopg.RawCursor):
    """``_PreparingCursor`` for statements written with PostgreSQL's own ``$n`` placeholders.

    psycopg caches its conversion of ``%s`` placeholders only for short statements; a multi-row insert of a
    hundred rows (2,300 placeholders) would be split and converted again on every execution, which cost
    more than PostgreSQL's work on it (about 40 ms a statement).
    """

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = True, binary: bool | None = None):
        return super().execute(query, params, prepare=prepare, binary=binary)


def _numbered(sql: str) -> str:
    """``sql`` with its ``%s`` placeholders numbered as PostgreSQL's ``$1``, ``$2``, ... (it holds no other %)."""
    parts = sql.split("%s")
    return "".join(f"{part}${k}" if k < len(parts) else part for k, part in enumerate(parts, start=1))


_SELECT_STORED = f"SELECT id, status_code, response, signed_digest FROM {_TABLE} WHERE tenant_id = %s AND pcs_id = %s"


P = ParamSpec("P")
R = TypeVar("R")


def reusing_connection(work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``work`` (reads, and the idempotent insert) on the thread's kept connection without a health check.

    Django's health check costs a ``SELECT 1`` round trip before the first query of every request. Here the
    kept connection is checked by using it instead: if it turns out dead (the database restarted or failed
    over since the last request), it is replaced and ``work`` runs once more, on a new connection. A failure
    on a new connection is the database being down, and propagates (503 + Retry-After upstream).

    The same goes for a kept connection whose prepared insert a migration made stale: PostgreSQL refuses to
    run a prepared statement whose result columns changed type ("cached plan must not change result
    type"), and a new connection prepares it afresh.
    """
    db = connections[DEFAULT_DB_ALIAS]  # the thread's connection, looked up once (the proxy does it per use)
    kept = db.connection is not None and not db.in_atomic_block
    if kept:
        db.health_check_done = True
    try:
        return work(*args, **kwargs)
    except (OperationalError, InterfaceError, NotSupportedError) as exc:
        if not kept or (isinstance(exc, NotSupportedError) and not _stale_prepared_statement(exc)):
            raise
        db.close()
        return work(*args, **kwargs)


def _stale_prepared_statement(exc: NotSupportedError) -> bool:
    return isinstance(exc.__cause__, psycopg.errors.FeatureNotSupported) and "cached plan" in str(exc)


@dataclass(frozen=True)
class StoredOutcome:
    record_id: int
    status_code: int
    response: dict[str, Any]
    signed_digest: str


@dataclass(frozen=True)
class NewRecord:
    tenant_id: int
    pcs_id: str
    shard_id: str
    epoch: int
    attempt: int
    signed_digest: str
    key_id: str
    body: dict[str, Any]
    d_hat: float
    coh_star: float
    r: float
    budget: float
    regime: str
    recomputed_d_hat: float
    score: float | None
    audit_sample: bool
    audit_probability: float
    status_code: int
    decision: str
    response: dict[str, Any]
    params_version: int
    received_at: datetime
    verified_at: datetime


def _row_values(rec: NewRecord) -> list[Any]:
    values = [getattr(rec, name) for name in _COLUMNS]
    values[_COLUMNS.index("body")] = json.dumps(rec.body, separators=(",", ":"))
    values[_COLUMNS.index("response")] = json.dumps(rec.response, separators=(",", ":"))
    return values


Inserted = int | StoredOutcome | None
# Rows per statement of insert_many: 100 x 22 parameters, far below PostgreSQL's 65,535.
_ROWS_PER_STATEMENT = 100


def insert_first(rec: NewRecord) -> Inserted:
    """Insert the outcome unless one exists for (tenant, pcs_id).

    Returns the new row's id; or, when a row was already there, that row if it could be read in the same
    round trip, else None (the caller reads it with ``stored_outcome``).
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(_INSERT, _row_values(rec))
            row = cursor.fetchone()
        return row[0] if row else None
    return _insert_rows(db, [rec])[(rec.tenant_id, rec.pcs_id)]


def insert_many(records: list[NewRecord]) -> list[Inserted]:
    """``insert_first`` for each record, in that order, with a statement per 100 rows on PostgreSQL.

    One multi-row statement costs PostgreSQL and this process about a third as much per row as a statement
    per row. A record whose (tenant, pcs_id) came earlier in ``records`` gets None: the caller reads the
    row the first one stored, visible to it on the same connection.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        return [insert_first(rec) for rec in records]
    keys = [(rec.tenant_id, rec.pcs_id) for rec in records]
    first: dict[tuple[int, str], NewRecord] = {}
    for rec, key in zip(records, keys, strict=True):
        first.setdefault(key, rec)
    rows = list(first.values())
    found: dict[tuple[int, str], Inserted] = {}
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        found.update(_insert_rows(db, rows[start : start + _ROWS_PER_STATEMENT]))
    return [found[key] if first[key] is rec else None for rec, key in zip(records, keys, strict=True)]


def _insert_rows(db: Any, records: list[NewRecord]) -> dict[tuple[int, str], Inserted]:
    """One statement for ``records`` (distinct keys) on PostgreSQL: each key's new id, stored row, or None."""
    # A server-binding cursor on the thread's connection lets psycopg prepare the statement server-side,
    # sparing PostgreSQL parsing and planning it each time and this process quoting its values into SQL
    # text (Django's own cursors bind client-side). Django still wraps it: errors surface as Django's, and
    # query logging and execute wrappers see it.
    db.ensure_connection()
    with db.wrap_database_errors:
        raw = _PreparingCursor(db.connection) if len(records) == 1 else _PreparingRawCursor(db.connection)
    cursor = db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)
    result: dict[tuple[int, str], Inserted] = {(rec.tenant_id, rec.pcs_id): None for rec in records}
    with cursor:
        if len(records) == 1:
            (rec,) = records
            cursor.execute(_insert_one_sql(), [*_row_values(rec), rec.tenant_id, rec.pcs_id])
            row = cursor.fetchone()
            if row is not None:
                result[(rec.tenant_id, rec.pcs_id)] = row[0] if row[1] is None else _stored(row)
            return result
        params: list[Any] = []
        for rec in records:
            params += _row_values(rec)
        cursor.execute(_insert_rows_sql(len(records)), params)
        for row in cursor.fetchall():
            result[(row[1], row[2])] = row[0] if row[3] is None else _stored((row[0], *row[3:]))
    return result


def stored_outcome(tenant_id: int, pcs_id: str) -> StoredOutcome | None:
    with connection.cursor() as cursor:
        cursor.execute(_SELECT_STORED, [tenant_id, pcs_id])
        row = cursor.fetchone()
    return None if row is None else _stored(row)


def _stored(row: tuple) -> StoredOutcome:
    response = row[2] if isinstance(row[2], dict) else json.loads(row[2])
    return StoredOutcome(row[0], row[1], response, row[3])
