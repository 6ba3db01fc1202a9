"""Who may submit and with which keys: tenants, their signing keys and the signature check."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from nacl.signing import VerifyKey

from agent_client import signing
from agent_client.canonical import PROTOCOLS, V0_1
from tenancy.config_cache import ProcessMemo, config_generation
from tenancy.models import DEFAULT_TENANT, ApiKey, SignAlg, SigningKey, Tenant


@dataclass(frozen=True)
class VerificationKey:
    key_id: str
    algorithm: str
    hmac_secret: bytes | None = None
    verify_key: VerifyKey | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= now) and (
            self.valid_until is None or now < self.valid_until
        )


@dataclass(frozen=True)
class TenantCredentials:
    tenant_id: int
    name: str
    enabled: bool
    sign_alg: str
    keys: tuple[VerificationKey, ...]
    # Token-bucket overrides of TOKEN_RATE / TOKEN_BURST; None uses the settings.
    rate_per_second: float | None = None
    burst: float | None = None
    # SHA-256 of the tenant's API keys, one of which a read of its outcomes needs (none: nobody reads)...
    api_key_digests: tuple[str, ...] = ()
    # ...unless the tenant was made readable without a key on purpose.
    outcomes_public: bool = False
    # The oldest PCS protocol version the tenant accepts (Tenant.min_pcs_version; PCS_MIN_VERSION for default).
    min_pcs_version: str = V0_1


class SignatureRejected(Exception):
    """The signature is missing, undecodable, or verifies with none of the tenant's valid keys."""

    def __init__(self, code: str, detail: str, key_ids: tuple[str, ...] = ()):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.key_ids = key_ids


def _environment_keys() -> list[VerificationKey]:
    """The default tenant's keys from PCS_HMAC_KEYS / PCS_ED25519_PUB_KEYS, named env-<alg>-<n>."""
    keys = [
        VerificationKey(f"env-hmac-{n}", SignAlg.HMAC, hmac_secret=secret.encode())
        for n, secret in enumerate(settings.PCS_HMAC_KEYS, 1)
    ]
    keys += [
        VerificationKey(f"env-ed25519-{n}", SignAlg.ED25519, verify_key=signing.load_ed25519_public_key(pub))
        for n, pub in enumerate(settings.PCS_ED25519_PUB_KEYS, 1)
    ]
    return keys


def _to_verification_key(row: SigningKey) -> VerificationKey | None:
    if row.algorithm == SignAlg.HMAC:
        return VerificationKey(row.key_id, SignAlg.HMAC, hmac_secret=row.secret.encode(),
                               valid_from=row.valid_from, valid_until=row.valid_until)  # fmt: skip
    try:
        verify_key = signing.load_ed25519_public_key(row.public_key_b64)
    except ValueError:
        return None  # a malformed key verifies nothing; admin validation keeps these out
    return VerificationKey(row.key_id, SignAlg.ED25519, verify_key=verify_key,
                           valid_from=row.valid_from, valid_until=row.valid_until)  # fmt: skip


def load_credentials(name: str) -> TenantCredentials | None:
    tenant = Tenant.objects.filter(name=name).first()
    if tenant is None:
        return None
    keys = [k for row in tenant.signing_keys.all() if (k := _to_verification_key(row))]
    sign_alg, min_version = tenant.sign_alg, tenant.min_pcs_version
    if name == DEFAULT_TENANT:
        sign_alg, min_version = settings.PCS_SIGN_ALG, settings.PCS_MIN_VERSION
        keys = _environment_keys() + keys
    keys = [k for k in keys if k.algorithm == sign_alg]
    api_keys = tuple(tenant.api_keys.values_list("digest", flat=True))
    return TenantCredentials(tenant.pk, tenant.name, tenant.enabled, sign_alg, tuple(keys),
                             tenant.rate_per_second, tenant.burst, api_keys, tenant.outcomes_public,
                             min_pcs_version=min_version)  # fmt: skip


credentials_memo: ProcessMemo[TenantCredentials | None] = ProcessMemo(load_credentials, config_generation)


def check_signature(creds: TenantCredentials, digest: bytes, sig: object, now: datetime) -> str:
    """Return the id of the key that verifies ``sig`` over ``digest``; raise SignatureRejected otherwise.

    Every key valid at ``now`` is tried, so old and new keys both verify during a rotation overlap.
    Returns "" for a tenant that does not sign, and only while FLK_ALLOW_UNSIGNED is on: a tenant row saved
    as unsigned some other way than the admin form (a script, an old backup) still accepts nothing unsigned.
    """
    if creds.sign_alg == SignAlg.NONE:
        if not settings.FLK_ALLOW_UNSIGNED:
            raise SignatureRejected("unsigned_refused", "this service accepts only signed PCS")
        return ""
    if sig is None or sig == "":
        raise SignatureRejected("signature_missing", f"this tenant requires a {creds.sign_alg} signature in 'sig'")
    try:
        raw = signing.decode_signature(sig)  # type: ignore[arg-type]
    except signing.SignatureDecodeError:
        raise SignatureRejected("signature_undecodable", "'sig' is not standard base64") from None
    valid = [k for k in creds.keys if k.valid_at(now)]
    if not valid:
        raise SignatureRejected("no_valid_key", "the tenant has no signing key valid now")
    for key in valid:
        if key.algorithm == SignAlg.HMAC:
            if signing.hmac_verify(key.hmac_secret or b"", digest, raw):
                return key.key_id
        elif signing.ed25519_verify(key.verify_key, digest, raw):  # type: ignore[arg-type]
            return key.key_id
    raise SignatureRejected(
        "signature_invalid",
        f"the {creds.sign_alg} signature verifies with none of the tenant's valid keys",
        tuple(k.key_id for k in valid),
    )


def below_minimum_version(creds: TenantCredentials, protocol: str) -> bool:
    """Whether a PCS of ``protocol`` ("0.1", "0.2") is older than the tenant accepts."""
    return PROTOCOLS.index(protocol) < PROTOCOLS.index(creds.min_pcs_version)


# A digest no key has: a read without a usable key is compared against it, so that every refusal costs the
# same work whether the tenant exists, has keys, or the key is wrong.
_NO_KEY_DIGEST = "0" * 64


def may_read_outcomes(creds: TenantCredentials | None, authorization: str | None) -> bool:
    """Whether a request with this ``Authorization`` header may read the tenant's outcomes.

    ``Authorization: Bearer <key>`` with one of the tenant's API keys, or a tenant marked readable without a
    key. Fails closed: an unknown or disabled tenant, a tenant without keys, a missing or wrong key are all
    simply "no", which the caller answers with one and the same 401, so the answer does not say which
    tenants exist.
    """
    scheme, _, key = (authorization or "").strip().partition(" ")
    key = key.strip()
    digest = ApiKey.digest_of(key) if scheme.lower() == "bearer" and key else _NO_KEY_DIGEST
    if creds is None or not creds.enabled:
        hmac.compare_digest(digest, _NO_KEY_DIGEST)
        return False
    if creds.outcomes_public:
        return True
    matched = False
    for known in creds.api_key_digests:  # every key compared: the time does not say which one matched
        matched |= hmac.compare_digest(digest, known)
    return matched
