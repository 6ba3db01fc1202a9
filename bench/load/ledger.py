"""The loss ledger of a chaos run: every request and its answer, and what they add up to against the database.

Pure functions over values (no service, no database): ``account`` takes the client's rows and the rows the
database holds at the end and says what was acknowledged, stored, lost and stored twice, so the checker
itself can be tested with a ledger that hides a loss.

Definitions (docs/operators/reliability.md):

- a PCS is *acknowledged* when any attempt to deliver it got a 2xx: the service said it holds it;
- it is *lost* when it was acknowledged and no outcome for its (tenant, pcs_id) is stored;
- an effect is *duplicated* when a (tenant, pcs_id) has more than one stored outcome or review item;
- an effect is *missing* when a stored outcome that waits for a label (escalated, rejected or drawn for the
  audit) has no review item;
- an answer *differs* when an acknowledged PCS was answered with a status other than the one stored (a
  replay must get the first answer back);
- a 503 is allowed under a fault only with a ``Retry-After``; any other 5xx is a bug.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

Key = tuple[str, str]  # (tenant, pcs_id): the dedup key


@dataclass(frozen=True)
class Attempt:
    """One request and its answer. ``status`` is None when no answer came (connection refused or reset)."""

    tenant: str
    pcs_id: str
    status: int | None
    retry_after: str | None
    sent: float
    answered: float
    retries: bool = True  # sent by a client that retries (False: a one-shot client)
    code: str | None = None  # the error's ``code`` in the answer's body (database_unavailable, wal_budget, ...)

    @property
    def key(self) -> Key:
        return (self.tenant, self.pcs_id)


@dataclass
class Accounting:
    sent: int = 0  # distinct PCS
    attempts: int = 0
    acknowledged: int = 0
    stored: int = 0  # distinct PCS of the ledger with a stored outcome (acknowledged or not)
    lost: list[Key] = field(default_factory=list)
    duplicated_records: list[Key] = field(default_factory=list)
    duplicated_review_items: list[Key] = field(default_factory=list)
    answers_differ: list[Key] = field(default_factory=list)
    missing_review_items: list[Key] = field(default_factory=list)
    unavailable_with_retry_after: int = 0
    unavailable_without_retry_after: int = 0
    other_5xx: int = 0
    no_answer: int = 0
    statuses: Counter = field(default_factory=Counter)
    unavailable_codes: Counter = field(default_factory=Counter)  # 503s by their error code
    never_acknowledged_one_shot: int = 0  # sent once, not acknowledged, by a client that does not retry

    def failures(self) -> list[str]:
        """What makes the run fail; empty when every promise held."""
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} acknowledged PCS lost")
        if self.duplicated_records or self.duplicated_review_items:
            found.append(f"{len(self.duplicated_records)} PCS stored twice, {len(self.duplicated_review_items)} "
                         "with two review items")  # fmt: skip
        if self.missing_review_items:
            found.append(f"{len(self.missing_review_items)} stored PCS waiting for a label have no review item")
        if self.answers_differ:
            found.append(f"{len(self.answers_differ)} PCS answered with another status than the one stored")
        if self.unavailable_without_retry_after:
            found.append(f"{self.unavailable_without_retry_after} 503 answers without Retry-After")
        if self.other_5xx:
            found.append(f"{self.other_5xx} 5xx answers other than 503")
        return found


def account(attempts: Iterable[Attempt], records: Iterable[tuple[str, str, int, bool]],
            review_items: Iterable[Key]) -> Accounting:  # fmt: skip
    """The ledger against the database: ``records`` are (tenant, pcs_id, status, waits for a label) of every
    stored outcome, ``review_items`` (tenant, pcs_id) of every review item, repeats included."""
    result = Accounting()
    acknowledged: dict[Key, set[int]] = {}
    delivered_by: dict[Key, bool] = {}
    for a in attempts:
        result.attempts += 1
        delivered_by[a.key] = delivered_by.get(a.key, False) or a.retries
        result.statuses["no answer" if a.status is None else a.status] += 1
        if a.status is None:
            result.no_answer += 1
        elif 200 <= a.status < 300:
            acknowledged.setdefault(a.key, set()).add(a.status)
        elif a.status == 503:
            result.unavailable_codes[a.code or "?"] += 1
            if a.retry_after:
                result.unavailable_with_retry_after += 1
            else:
                result.unavailable_without_retry_after += 1
        elif a.status >= 500:
            result.other_5xx += 1
    result.sent = len(delivered_by)
    result.acknowledged = len(acknowledged)
    result.never_acknowledged_one_shot = sum(1 for k, retries in delivered_by.items()
                                             if not retries and k not in acknowledged)  # fmt: skip
    stored_status: dict[Key, int] = {}
    record_count: Counter = Counter()
    needs_review: set[Key] = set()
    for tenant, pcs_id, status, waits_for_label in records:
        record_count[(tenant, pcs_id)] += 1
        stored_status[(tenant, pcs_id)] = status
        if waits_for_label:
            needs_review.add((tenant, pcs_id))
    result.stored = sum(1 for k in delivered_by if k in stored_status)
    result.lost = sorted(k for k in acknowledged if k not in stored_status)
    result.duplicated_records = sorted(k for k, n in record_count.items() if n > 1)
    items = Counter(review_items)
    result.duplicated_review_items = sorted(k for k, n in items.items() if n > 1)
    result.missing_review_items = sorted(k for k in needs_review if k not in items)
    result.answers_differ = sorted(k for k, statuses in acknowledged.items()
                                   if k in stored_status and statuses != {stored_status[k]})  # fmt: skip
    return result


def recovery_seconds(attempts: Iterable[Attempt], fault_over: float) -> float | None:
    """Seconds from the end of a fault to the first 2xx answer of a request sent after it (None: none came)."""
    firsts = [a.answered for a in attempts if a.status is not None and 200 <= a.status < 300 and a.sent >= fault_over]
    return min(firsts) - fault_over if firsts else None
