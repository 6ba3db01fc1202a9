"""Logging filters: what a client wrote reaches the logs short, without personal data, once per refusal.

``RedactPersonalData`` removes e-mail addresses and phone numbers from free-text fields and cuts every
string a client controls (a header, a path) to ``MAX_FIELD_CHARS``. Identifiers we log on purpose (pcs_id,
tenant, status, counters) never look like either. ``OneLinePerRefusal`` makes a refused request (4xx) one
line: no traceback for a 403, and no second line for an API answer the request log already has.
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


# Longer strings are cut: an 8,000-character header must not become an 8,000-character log line.
MAX_FIELD_CHARS = 256


def redact(text: str) -> str:
    """``text`` cut to MAX_FIELD_CHARS, with e-mail addresses and phone numbers replaced by placeholders."""
    if len(text) > MAX_FIELD_CHARS:
        text = f"{text[:MAX_FIELD_CHARS]}…[{len(text) - MAX_FIELD_CHARS} more]"
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
            if name in _STANDARD:
                continue
            if name == "request" and value is not None and not isinstance(value, str):
                value = str(value)  # Django's records carry the request, whose text holds the whole path
            if isinstance(value, str) and (name not in _KEEP or len(value) > MAX_FIELD_CHARS):
                setattr(record, name, redact(value))
        return True


class OneLinePerRefusal(logging.Filter):
    """A refused request is one log line.

    Django logs every 4xx answer on ``django.request``, a PermissionDenied with its traceback: a 403 then
    fills a screen, and a flood of them fills the disk. The traceback of a 403 says nothing (the refusal is
    the expected path), so it is dropped; an API answer under /v1/ is already the request log's line
    (``ingest.requestlog``), so Django's copy of it is dropped. Server errors (5xx) keep everything.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("django.request") and not record.name.startswith("django.security"):
            return True
        status = getattr(record, "status_code", None)
        if status is None or status >= 500:
            return True
        path = getattr(getattr(record, "request", None), "path", "")
        if isinstance(path, str) and path.startswith("/v1/"):
            return False
        if status == 403:
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True
