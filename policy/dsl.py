"""The policy DSL: a small text format for VerifyParams, compiled to the values of a draft version.

Example::

    # Tighter D̂ checks for the spring release.
    tolerance D_hat = 0.12
    tolerance coh_star = 0.05
    tolerance budget = 0.01
    budget base = 0.10, alpha = 0.30, beta = 0.50, gamma = 0.20, D0 = 2.2
    regime sticky when coh_star >= 0.70 and D_hat <= 1.5
    regime non_sticky when D_hat >= 2.6
    score D_hat = 0.35, coh_star = 0.40, r = 0.25, r0 = 0.65
    score kind = fitted
    conformal delta = 0.05, reject_delta = 0.005, n_min = 100
    audit rate = 0.02
    audit rate until n_min = 0.2
    dedup ttl = 14 days

Anything a policy does not set is taken from the base version (the one in service). Compilation refuses a
policy that does not parse, sets a value twice, or breaks an invariant of ``policy.params_rules``; the error
carries the line and column of the offending text. Pure: no ORM, so the admin, tests and tools share it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken

from policy.params_rules import PARAM_FIELDS, TEXT_FIELDS, invariant_errors

# EBNF of the policy language (lark syntax). One statement per line; '#' starts a comment.
GRAMMAR = r"""
    policy: _NL* (statement _NL+)* statement?

    ?statement: tolerance | budget | regime_sticky | regime_non_sticky | score_kind | score | conformal
      | audit_bootstrap | audit | dedup

    tolerance: "tolerance" TOL_NAME "=" NUMBER
    budget: "budget" budget_item ("," budget_item)*
    budget_item: BUDGET_NAME "=" NUMBER
    regime_sticky: "regime" "sticky" "when" "coh_star" ">=" NUMBER "and" "D_hat" "<=" NUMBER
    regime_non_sticky: "regime" "non_sticky" "when" "D_hat" ">=" NUMBER
    score: "score" score_item ("," score_item)*
    score_item: SCORE_NAME "=" NUMBER
    score_kind: "score" "kind" "=" SCORE_KIND
    conformal: "conformal" conformal_item ("," conformal_item)*
    conformal_item: CONFORMAL_NAME "=" NUMBER
    audit: "audit" "rate" "=" NUMBER
    audit_bootstrap: "audit" "rate" "until" "n_min" "=" NUMBER
    dedup: "dedup" "ttl" "=" NUMBER "days"

    TOL_NAME: "D_hat" | "coh_star" | "budget"
    BUDGET_NAME: "base" | "alpha" | "beta" | "gamma" | "D0"
    SCORE_NAME: "D_hat" | "coh_star" | "r0" | "r"
    SCORE_KIND: "reference" | "centred" | "fitted"
    CONFORMAL_NAME: "reject_delta" | "delta" | "n_min"

    NUMBER: /-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?/
    COMMENT: /#[^\n]*/
    _NL: /\r?\n/

    %import common.WS_INLINE
    %ignore WS_INLINE
    %ignore COMMENT
"""

_PARSER = Lark(GRAMMAR, start="policy", parser="lalr", propagate_positions=True)

_TOLERANCE = {"D_hat": "tol_d", "coh_star": "tol_coh", "budget": "budget_tol"}
_BUDGET = {"base": "base", "alpha": "alpha", "beta": "beta", "gamma": "gamma", "D0": "d0"}
_SCORE = {"D_hat": "w_d", "coh_star": "w_coh", "r": "w_r", "r0": "r0"}
_CONFORMAL = {"delta": "delta", "reject_delta": "reject_delta", "n_min": "n_min"}
_INTEGER_FIELDS = {"n_min", "dedup_ttl_days"}


@dataclass
class PolicyError(Exception):
    """A policy that cannot become a version: what is wrong and where (1-based line and column)."""

    message: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


# What each terminal of the grammar is, in the words of an error message.
_NAMED_LISTS = {
    "TOL_NAME": ("tolerance name", _TOLERANCE),
    "BUDGET_NAME": ("budget name", _BUDGET),
    "SCORE_NAME": ("score name", _SCORE),
    "CONFORMAL_NAME": ("conformal name", _CONFORMAL),
    "SCORE_KIND": ("score kind", {"reference": 0, "centred": 0, "fitted": 0}),
}
_STATEMENTS = ("tolerance", "budget", "regime", "score", "conformal", "audit", "dedup")
_LITERALS = {t.name: t.pattern.value for t in _PARSER.terminals if t.pattern.type == "str"}


def _one_of(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _starts_statement(terminals: set[str]) -> bool:
    """Whether the parser stood where a statement begins (a blank line may come there too)."""
    keywords = {name.upper() for name in _STATEMENTS}
    return bool(terminals & keywords) and terminals <= keywords | {"_NL"}


def _expected(terminals: set[str]) -> str:
    """``terminals`` (what the parser could have taken) in plain words."""
    if _starts_statement(terminals):
        return f"a statement ({_one_of(list(_STATEMENTS))})"
    words = []
    for name in sorted(terminals, key=lambda n: (n == "_NL", n)):
        if name in _NAMED_LISTS:
            what, known = _NAMED_LISTS[name]
            words.append(f"a {what} ({_one_of(list(known))})")
        elif name == "NUMBER":
            words.append("a number")
        elif name == "_NL":
            words.append("the end of the line")
        else:
            words.append(f"'{_LITERALS.get(name, name.lower())}'")
    return _one_of(words)


def _found(exc: UnexpectedInput, text: str) -> str:
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "_NL" or exc.token.type == "$END":
            return "the end of the line"
        return f"the number {exc.token}" if exc.token.type == "NUMBER" else f"'{exc.token}'"
    line = text.splitlines()[exc.line - 1] if 0 < exc.line <= len(text.splitlines()) else ""
    word = re.match(r"[^\s,=]+|\S", line[exc.column - 1 :])
    return f"'{word.group(0)}'" if word else "the end of the line"


def _describe(exc: UnexpectedInput, text: str) -> str:
    """A parse error in plain words: what was expected and what was found (the position goes with it)."""
    if isinstance(exc, UnexpectedEOF):
        return f"the policy ends in the middle of a statement: expected {_expected(set(exc.expected))}"
    expected = set(exc.expected) if isinstance(exc, UnexpectedToken) else set(exc.allowed or ())
    found = _found(exc, text)
    named = [name for name in expected if name in _NAMED_LISTS]
    if len(named) == 1 and found.startswith("'"):  # a name where a known one was expected: list them
        what, known = _NAMED_LISTS[named[0]]
        return f"unknown {what} {found}; known {what}s: {', '.join(known)}"
    if _starts_statement(expected) and found.startswith("'"):
        return f"unknown statement {found}; a statement starts with {_one_of(list(_STATEMENTS))}"
    return f"expected {_expected(expected)}, found {found}" if expected else f"unexpected {found}"


def compile_policy(text: str, base: Mapping[str, float]) -> dict[str, float]:
    """Compile ``text`` over the ``base`` values into a complete set of VerifyParams values.

    Raises PolicyError (with line and column) on a syntax error, a value set twice, or a broken invariant.
    """
    try:
        tree = _PARSER.parse(text if text.endswith("\n") else text + "\n")
    except UnexpectedInput as exc:
        raise PolicyError(
            _describe(exc, text), exc.line if exc.line > 0 else 1, exc.column if exc.column > 0 else 1
        ) from None

    # A base from before the score kind existed scores with the reference formula.
    values: dict[str, Any] = {"score_kind": base.get("score_kind", "reference")}
    values.update({name: base[name] for name in PARAM_FIELDS if name not in TEXT_FIELDS})
    where: dict[str, Token] = {}

    def assign(field: str, number: Token) -> None:
        if field in where:
            first = where[field]
            raise PolicyError(f"{field} is already set on line {first.line}", number.line, number.column)
        if field in TEXT_FIELDS:  # a name (the score kind), which the grammar has already checked
            values[field], where[field] = str(number), number
            return
        value: float = float(number)
        if not math.isfinite(value):  # 1e999 reads as infinity: refused here, where its line is known
            raise PolicyError(f"{field} must be a finite number; {number} is too large", number.line, number.column)
        if field in _INTEGER_FIELDS:
            if value != int(value):
                raise PolicyError(f"{field} must be a whole number", number.line, number.column)
            value = int(value)
        values[field] = value
        where[field] = number

    for statement in tree.children:
        if not isinstance(statement, Tree):
            continue
        kind = statement.data
        tokens = [t for t in statement.scan_values(lambda v: isinstance(v, Token))]
        if kind == "score_kind":
            assign("score_kind", tokens[0])
        elif kind == "tolerance":
            assign(_TOLERANCE[str(tokens[0])], tokens[1])
        elif kind in ("budget", "score", "conformal"):
            names = {"budget": _BUDGET, "score": _SCORE, "conformal": _CONFORMAL}[kind]
            for name, number in zip(tokens[::2], tokens[1::2], strict=True):
                assign(names[str(name)], number)
        elif kind == "regime_sticky":
            assign("sticky_coh_min", tokens[0])
            assign("sticky_d_max", tokens[1])
        elif kind == "regime_non_sticky":
            assign("non_sticky_d_min", tokens[0])
        elif kind == "audit":
            assign("audit_rate", tokens[0])
        elif kind == "audit_bootstrap":
            assign("bootstrap_audit_rate", tokens[0])
        elif kind == "dedup":
            assign("dedup_ttl_days", tokens[0])

    errors = invariant_errors(values)
    if errors:
        # Point at the statement that set the field; a field left at the base value is reported at line 1.
        field = next((f for f in errors if f in where), next(iter(errors)))
        token = where.get(field)
        line, column = (token.line, token.column) if token is not None else (1, 1)
        origin = "" if token is not None else " (value of the base version)"
        raise PolicyError(f"{field}{origin} {'; '.join(errors[field])}", line, column)
    return values
