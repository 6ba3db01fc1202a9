"""The chaos run's accounting (bench/load/ledger.py) finds what it is there to find: a loss, a PCS stored or
queued twice, an answer that differs from the stored one, a 503 without Retry-After, another 5xx."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_path = Path(__file__).resolve().parent.parent / "bench" / "load" / "ledger.py"
_spec = importlib.util.spec_from_file_location("chaos_ledger", _path)
ledger = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ledger  # dataclasses look their module up while the file runs
_spec.loader.exec_module(ledger)
Attempt, account, recovery_seconds = ledger.Attempt, ledger.account, ledger.recovery_seconds


def attempt(pcs_id: str, status: int | None, retry_after: str | None = None, sent: float = 0.0, *,
            tenant: str = "acme", retries: bool = True) -> Attempt:  # fmt: skip
    return Attempt(tenant, pcs_id, status, retry_after, sent, sent + 0.01, retries)


def test_a_clean_run_passes_and_counts_each_pcs_once():
    rows = [attempt("a", 503, "5", 1.0), attempt("a", 200, sent=7.0), attempt("b", 202), attempt("b", 202, sent=3.0),
            attempt("c", None, retries=False)]  # fmt: skip
    result = account(
        rows, [("acme", "a", 200, False), ("acme", "b", 202, False), ("acme", "c", 200, False)], [("acme", "b")]
    )
    assert (result.sent, result.attempts, result.acknowledged, result.stored) == (3, 5, 2, 3)
    assert result.unavailable_with_retry_after == 1 and result.no_answer == 1
    assert result.never_acknowledged_one_shot == 1  # not acknowledged, stored by the replay: not a loss
    assert result.failures() == []


def test_an_acknowledged_pcs_missing_from_the_database_is_a_loss():
    rows = [attempt("a", 200), attempt("b", 202)]
    result = account(rows, [("acme", "a", 200, False)], [])
    assert result.lost == [("acme", "b")]
    assert result.failures() == ["1 acknowledged PCS lost"]


def test_the_same_pcs_id_of_another_tenant_does_not_hide_a_loss():
    result = account([attempt("a", 200, tenant="acme")], [("globex", "a", 200, False)], [])
    assert result.lost == [("acme", "a")]


def test_an_unacknowledged_pcs_that_was_not_stored_is_not_a_loss():
    result = account([attempt("a", 503, "5"), attempt("b", None)], [], [])
    assert result.lost == [] and result.failures() == []


def test_two_records_or_two_review_items_of_one_pcs_are_duplicates():
    result = account(
        [attempt("a", 202)], [("acme", "a", 202, False), ("acme", "a", 202, False)], [("acme", "a"), ("acme", "a")]
    )
    assert result.duplicated_records == [("acme", "a")] and result.duplicated_review_items == [("acme", "a")]
    assert result.failures() == ["1 PCS stored twice, 1 with two review items"]


def test_an_escalated_pcs_stored_without_its_review_item_is_a_missing_effect():
    rows = [attempt("a", 202), attempt("b", 202), attempt("c", 200)]
    stored = [("acme", "a", 202, True), ("acme", "b", 202, True), ("acme", "c", 200, False)]
    result = account(rows, stored, [("acme", "a")])
    assert result.missing_review_items == [("acme", "b")]
    assert result.failures() == ["1 stored PCS waiting for a label have no review item"]


def test_an_answer_other_than_the_stored_one_is_reported():
    result = account([attempt("a", 200), attempt("a", 202, sent=2.0)], [("acme", "a", 200, False)], [])
    assert result.answers_differ == [("acme", "a")]
    assert len(result.failures()) == 1


def test_a_503_without_retry_after_and_a_502_fail_the_run():
    result = account([attempt("a", 503), attempt("a", 502, sent=1.0), attempt("a", 200, sent=2.0)],
                     [("acme", "a", 200, False)], [])  # fmt: skip
    assert (result.unavailable_without_retry_after, result.other_5xx) == (1, 1)
    assert result.failures() == ["1 503 answers without Retry-After", "1 5xx answers other than 503"]


def test_recovery_is_the_first_success_of_a_request_sent_after_the_fault():
    rows = [attempt("a", 200, sent=9.0), attempt("b", 503, "5", sent=10.5), attempt("c", 200, sent=11.0),
            attempt("d", 200, sent=12.0)]  # fmt: skip
    assert recovery_seconds(rows, 10.0) == 11.01 - 10.0
    assert recovery_seconds(rows, 20.0) is None
