"""Signing and verifying the PCS digest with HMAC-SHA256 or Ed25519; signatures are standard base64."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

HMAC = "hmac"
ED25519 = "ed25519"
NONE = "none"
ALGORITHMS = (NONE, HMAC, ED25519)


class SignatureDecodeError(ValueError):
    """The signature is not standard base64 or has the wrong length for its algorithm."""


def encode_signature(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def decode_signature(sig: str) -> bytes:
    try:
        return base64.b64decode(sig.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise SignatureDecodeError("signature is not standard base64") from exc


def hmac_sign(key: bytes, digest: bytes) -> str:
    """HMAC-SHA256 of the digest under ``key``, base64."""
    return encode_signature(hmac.new(key, digest, hashlib.sha256).digest())


def hmac_verify(key: bytes, digest: bytes, signature: bytes) -> bool:
    """Constant-time comparison of the expected HMAC with the given raw signature bytes."""
    return hmac.compare_digest(hmac.new(key, digest, hashlib.sha256).digest(), signature)


def ed25519_signing_key(seed: bytes) -> SigningKey:
    """The Ed25519 key pair derived from a 32-byte seed."""
    return SigningKey(seed)


def ed25519_public_key_b64(seed: bytes) -> str:
    return base64.b64encode(bytes(SigningKey(seed).verify_key)).decode("ascii")


def ed25519_sign(seed: bytes, digest: bytes) -> str:
    """Ed25519 signature (64 bytes) of the digest with the key from ``seed``, base64."""
    return encode_signature(SigningKey(seed).sign(digest).signature)


def load_ed25519_public_key(public_key_b64: str) -> VerifyKey:
    """A verify key from standard base64 of the 32-byte public key; ValueError when malformed."""
    try:
        raw = base64.b64decode(public_key_b64.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("Ed25519 public key is not standard base64") from exc
    if len(raw) != 32:
        raise ValueError(f"Ed25519 public key must be 32 bytes, got {len(raw)}")
    return VerifyKey(raw)


def ed25519_verify(key: VerifyKey, digest: bytes, signature: bytes) -> bool:
    if len(signature) != 64:
        return False
    try:
        key.verify(digest, signature)
    except BadSignatureError:
        return False
    return True
