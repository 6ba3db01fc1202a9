"""A logging filter that removes e-mail addresses and phone numbers from free-text log fields.

Identifiers we log on purpose (pcs_id, tenant, status, counters) never look like either; the filter is for
messages and details that may quote what a client or an admin wrote.
"""

from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# International or national numbers of 7+ digits with the usual separators; a 64-hex pcs_id or a bare
# counter does not match because separators or a leading + are required between the digit groups.
PHONE = re.compile(r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){2,4}(?![\w.])")
_KEEP = frozenset({"pcs_id", "tenant", "status", "latency_ms", "event", "endpoint", "code", "method", "path"})
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    """``text`` with e-mail addresses and phone numbers replaced by placeholders."""
    return PHONE.sub("[phone]", EMAIL.sub("[email]", text))


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
