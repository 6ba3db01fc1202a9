"""Merkle tree hash over the work's event chunks, as RFC 6962 section 2.1 defines it.

Leaves are hashed as SHA-256(0x00 || leaf), inner nodes as SHA-256(0x01 || left || right); a list of n
leaves splits at the largest power of two below n, so an odd leaf is promoted, never duplicated. The
empty list hashes to SHA-256 of the empty string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence


def _leaf_hash(leaf: bytes | bytearray | memoryview) -> bytes:
    digest = hashlib.sha256(b"\x00")
    digest.update(leaf)
    return digest.digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _tree_hash(hashes: Sequence[bytes]) -> bytes:
    """The hash of the subtree over these leaf hashes."""
    n = len(hashes)
    if n == 1:
        return hashes[0]
    split = 1 << ((n - 1).bit_length() - 1)
    return _node_hash(_tree_hash(hashes[:split]), _tree_hash(hashes[split:]))


def merkle_root(leaves: Iterable[bytes]) -> str:
    """The RFC 6962 Merkle tree hash of ``leaves`` (a list, or any iterable, of bytes) as lowercase hex."""
    if leaves is None or isinstance(leaves, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"merkle_root takes a list of leaves, each bytes, not {type(leaves).__name__}")
    hashes = []
    for index, leaf in enumerate(leaves):
        if not isinstance(leaf, (bytes, bytearray, memoryview)):
            raise TypeError(f"leaf {index} is {type(leaf).__name__}, not bytes (encode text first, e.g. as UTF-8)")
        hashes.append(_leaf_hash(leaf))
    if not hashes:
        return hashlib.sha256(b"").hexdigest()
    return _tree_hash(hashes).hex()
