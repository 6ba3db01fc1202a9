"""Merkle tree hash over the work's event chunks, as RFC 6962 section 2.1 defines it.

Leaves are hashed as SHA-256(0x00 || leaf), inner nodes as SHA-256(0x01 || left || right); a list of n
leaves splits at the largest power of two below n, so an odd leaf is promoted, never duplicated. The
empty list hashes to SHA-256 of the empty string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _tree_hash(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 1:
        return _leaf_hash(leaves[0])
    split = 1 << ((n - 1).bit_length() - 1)
    return _node_hash(_tree_hash(leaves[:split]), _tree_hash(leaves[split:]))


def merkle_root(leaves: list[bytes]) -> str:
    """The RFC 6962 Merkle tree hash of ``leaves`` as lowercase hex."""
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    return _tree_hash(leaves).hex()
