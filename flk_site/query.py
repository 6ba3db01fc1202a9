"""Numbers from query strings and form fields, read the way a client can send them without causing a 500."""

from __future__ import annotations


def ascii_int(raw: str, *, max_digits: int = 11) -> int | None:
    """The non-negative integer `raw` spells in ASCII digits, or None.

    `str.isdigit()` alone is true for "²" and other digits `int()` refuses, and an unbounded run of digits
    overflows the database's integer columns: both are a client's typo, never a server error.
    """
    if raw.isascii() and raw.isdigit() and len(raw) <= max_digits:
        return int(raw)
    return None
