"""A logging filter that removes e-mail addresses and phone numbers from free-text log fields.

Identifiers we log on purpose (pcs_id, tenant, status, counters) never look like either; the filter is for
messages and details that may quote what a client or an admin wrote.
"""

from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A run of digits with the separators phone numbers are written with (spaces, dashes, parentheses, a
# leading +). Dots are not separators here, so decimals and dotted versions are left alone; ISO dates and
# runs outside 7–15 digits (the E.164 maximum) are kept too. Approximate by nature: a space-separated list
# of numbers can be taken for a phone number, which errs on the side of privacy.
PHONE_CANDIDATE = re.compile(r"(?<![\w+.])\+?\(?\d[\d \t()-]{5,}\d(?![\w.])")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    separated = text.startswith("+") or any(ch in text for ch in " \t()-")
    if 7 <= digits <= 15 and separated and not _ISO_DATE.match(text):
        return "[phone]"
    return text


_KEEP = frozenset({"pcs_id", "tenant", "status", "latency_ms", "event", "endpoint", "code", "method", "path"})
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    """``text`` with e-mail addresses and phone numbers replaced by placeholders."""
    return PHONE_CANDIDATE.sub(_phone, EMAIL.sub("[email]", text))


class RedactPersonalData(logging.Filter):
    """Redacts the message, its arguments and every string ``extra`` field except our identifiers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            if isinstance(record.args, dict):
                record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
            else:
                record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        for name, value in list(record.__dict__.items()):
            if isinstance(value, str) and name not in _STANDARD and name not in _KEEP:
                setattr(record, name, redact(value))
        return True
