"""The items of a batch body (``POST /v1/pcs/batch``): a JSON array of PCS, or NDJSON, one PCS a line.

Each item is cut out as the bytes it was sent as, not re-serialised, so that it goes through the very
parsing and validation of a single submission (``agent_client.schema.parse_pcs``) and gets the answer it
would get alone: a duplicate key or a NaN in an item is that item's 400, as it would be on its own. Pure
and used by the request path and by the WAL reader (which gives the replay one record per item).
"""

from __future__ import annotations

import json

_DECODER = json.JSONDecoder()  # finds where each array element ends; the item is parsed again, strictly
_WHITESPACE = " \t\n\r"


class BatchMalformed(ValueError):
    """The body is not a batch: not a JSON array (or, for NDJSON, not UTF-8)."""


def split_items(body: bytes, ndjson: bool = False) -> list[bytes]:
    """The items of a batch body, each as the bytes it was sent as.

    NDJSON: every line that is not blank (a trailing ``\\r`` is dropped), malformed ones included, since a
    malformed line is one item's 400. JSON: the elements of the top-level array; a body that is not one
    (not JSON, or JSON of another type) is ``BatchMalformed``.
    """
    if ndjson:
        return [line.removesuffix(b"\r") for line in body.split(b"\n") if line.strip()]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BatchMalformed(f"the body is not UTF-8: {exc}") from None
    end = len(text)
    at = _skip(text, 1 if text.startswith("\ufeff") else 0)
    if at >= end or text[at] != "[":
        raise BatchMalformed("the body must be a JSON array of PCS objects")
    at = _skip(text, at + 1)
    items: list[bytes] = []
    if at < end and text[at] == "]":
        at += 1
    else:
        while True:
            try:
                _, stop = _DECODER.raw_decode(text, at)
            except (ValueError, RecursionError) as exc:
                raise BatchMalformed(f"the body is not a JSON array: {exc}") from None
            items.append(text[at:stop].encode("utf-8"))
            at = _skip(text, stop)
            if at < end and text[at] == ",":
                at = _skip(text, at + 1)
                continue
            if at < end and text[at] == "]":
                at += 1
                break
            raise BatchMalformed(f"the body is not a JSON array: expected ',' or ']' at character {at}")
    if _skip(text, at) != end:
        raise BatchMalformed(f"the body is not a JSON array: extra data at character {at}")
    return items


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at
