"""Who is calling: the client address that per-address limits (submissions, logins) are keyed on.

The peer of the TCP connection (``REMOTE_ADDR``) is the client unless it is one of the proxies named in
``FLK_TRUSTED_PROXIES``: then ``X-Forwarded-For`` is read from the right, skipping trusted proxies, and the
first address no trusted proxy vouches for is the client. Entries to the left of it were written by the
client itself and are never believed. With no trusted proxy configured the header is ignored entirely.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def trusted_networks() -> tuple[Network, ...]:
    """FLK_TRUSTED_PROXIES parsed; a malformed entry fails here, at the first request, naming itself."""
    try:
        return _networks(tuple(settings.FLK_TRUSTED_PROXIES))
    except ValueError as exc:
        raise ValueError(f"FLK_TRUSTED_PROXIES: {exc}") from None


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str:
    """The caller's address as text (``0.0.0.0``, one bucket for all of them, if the server gave none)."""
    peer = _parse(request.META.get("REMOTE_ADDR", ""))
    if peer is None:
        return "0.0.0.0"
    trusted = trusted_networks()
    if not trusted or not any(peer in net for net in trusted):
        return str(peer)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")[:2048].split(",")
    client = peer
    for entry in reversed(forwarded):
        hop = _parse(entry)
        if hop is None:
            break  # garbage written by someone: stop at the last address a trusted proxy vouched for
        client = hop
        if not any(hop in net for net in trusted):
            break
    return str(client)
