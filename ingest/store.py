"""Writing and reading stored PCS outcomes; the unique (tenant, pcs_id) constraint is the dedup."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from django.db import InterfaceError, OperationalError, connection

from ingest.models import PcsRecord

_TABLE = PcsRecord._meta.db_table
_COLUMNS = (
    "tenant_id", "pcs_id", "shard_id", "epoch", "attempt", "signed_digest", "key_id", "body",
    "d_hat", "coh_star", "r", "budget", "regime", "recomputed_d_hat", "score", "audit_sample", "status_code",
    "decision", "response", "params_version", "received_at", "verified_at",
)  # fmt: skip
# One statement, one round trip: the first writer inserts; a concurrent or later writer of the same
# (tenant, pcs_id) inserts nothing and learns it lost from the empty RETURNING. PostgreSQL makes a
# concurrent inserter wait for the winner's commit, so the loser's follow-up read sees the winner's row.
_INSERT = (
    f"INSERT INTO {_TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "
    f"ON CONFLICT (tenant_id, pcs_id) DO NOTHING RETURNING id"
)
_SELECT_STORED = f"SELECT id, status_code, response, signed_digest FROM {_TABLE} WHERE tenant_id = %s AND pcs_id = %s"


P = ParamSpec("P")
R = TypeVar("R")


def reusing_connection(work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``work`` (reads, and the idempotent insert) on the thread's kept connection without a health check.

    Django's health check costs a ``SELECT 1`` round trip before the first query of every request. Here the
    kept connection is checked by using it instead: if it turns out dead (the database restarted or failed
    over since the last request), it is replaced and ``work`` runs once more, on a new connection. A failure
    on a new connection is the database being down, and propagates (503 + Retry-After upstream).
    """
    kept = connection.connection is not None and not connection.in_atomic_block
    if kept:
        connection.health_check_done = True
    try:
        return work(*args, **kwargs)
    except (OperationalError, InterfaceError):
        if not kept:
            raise
        connection.close()
        return work(*args, **kwargs)


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


def insert_first(rec: NewRecord) -> int | None:
    """Insert the outcome unless one exists for (tenant, pcs_id); return the new id, or None if it lost."""
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, _row_values(rec))
        row = cursor.fetchone()
    return row[0] if row else None


def stored_outcome(tenant_id: int, pcs_id: str) -> StoredOutcome | None:
    with connection.cursor() as cursor:
        cursor.execute(_SELECT_STORED, [tenant_id, pcs_id])
        row = cursor.fetchone()
    if row is None:
        return None
    response = row[2] if isinstance(row[2], dict) else json.loads(row[2])
    return StoredOutcome(row[0], row[1], response, row[3])
