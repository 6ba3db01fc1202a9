"""Signatures: HMAC and Ed25519, per-tenant keys in the database, rotation overlap, nothing stored on 401."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from flk_site.testing import ED25519_SEED, ed25519_public_b64, make_pcs, reset_config_memos, signed
from ingest.models import PcsRecord

pytestmark = pytest.mark.django_db


def test_a_wrong_hmac_is_401_and_nothing_is_stored(hmac_default_tenant, submit):
    pcs = signed(make_pcs(), key=b"not-the-key")
    response = submit(pcs)
    assert response.status_code == 401
    assert response.json()["code"] == "signature_invalid"
    assert response.json()["key_ids"] == ["env-hmac-1"]
    assert not PcsRecord.objects.exists()


def test_the_error_names_the_key_ids_never_the_keys(make_tenant, submit):
    make_tenant("acme", hmac={"k-2026": "super-secret-value"})
    response = submit(signed(make_pcs(), key=b"guess"), tenant="acme")
    assert response.status_code == 401
    assert response.json()["key_ids"] == ["k-2026"]
    assert b"super-secret-value" not in response.content


@pytest.mark.parametrize("sig", ["", "not base64!!", None])
def test_missing_or_undecodable_signature_is_401(hmac_default_tenant, submit, sig):
    pcs = make_pcs()
    if sig is None:
        pcs.pop("sig")
    else:
        pcs["sig"] = sig
    response = submit(pcs)
    assert response.status_code == 401
    assert response.json()["code"] in {"signature_missing", "signature_undecodable"}
    assert not PcsRecord.objects.exists()


def test_a_signature_over_other_values_is_401(hmac_default_tenant, submit):
    pcs = signed(make_pcs())
    pcs["r"] = 0.5  # changed after signing; budget now also differs, but the signature fails first
    assert submit(pcs).status_code == 401


def test_every_configured_hmac_key_is_accepted_during_rotation(hmac_default_tenant, settings, submit):
    settings.PCS_HMAC_KEYS = ["old-key", "new-key"]
    reset_config_memos()
    assert submit(signed(make_pcs(), key=b"old-key")).status_code == 200
    assert submit(signed(make_pcs(), key=b"new-key")).status_code == 200
    assert submit(signed(make_pcs(), key=b"other")).status_code == 401


def test_ed25519_from_the_environment(settings, submit, unsigned_default_tenant):
    settings.PCS_SIGN_ALG = "ed25519"
    settings.PCS_ED25519_PUB_KEYS = [ed25519_public_b64()]
    reset_config_memos()
    assert submit(signed(make_pcs(), "ed25519")).status_code == 200
    assert submit(signed(make_pcs(), "ed25519", key=bytes(32))).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_tenant_added_in_the_database_works_without_a_restart(make_tenant, submit):
    assert submit(signed(make_pcs(), "ed25519"), tenant="newco").status_code == 401
    make_tenant("newco", sign_alg="ed25519", ed25519={"e1": ed25519_public_b64()})
    assert submit(signed(make_pcs(), "ed25519", key=ED25519_SEED), tenant="newco").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_key_added_to_a_known_tenant_works_on_the_next_request(make_tenant, submit):
    tenant = make_tenant("growing", hmac={"k1": "first"})
    assert submit(signed(make_pcs(), key=b"first"), tenant="growing").status_code == 200
    assert submit(signed(make_pcs(), key=b"second"), tenant="growing").status_code == 401
    tenant.signing_keys.create(key_id="k2", algorithm="hmac", secret="second")
    assert submit(signed(make_pcs(), key=b"second"), tenant="growing").status_code == 200


def test_expired_and_future_keys_do_not_verify(make_tenant, submit):
    now = timezone.now()
    tenant = make_tenant("rotating", hmac={"old": "old-secret"}, valid_until=now - timedelta(minutes=1))
    tenant.signing_keys.create(
        key_id="future", algorithm="hmac", secret="future-secret", valid_from=now + timedelta(days=1)
    )
    tenant.signing_keys.create(key_id="current", algorithm="hmac", secret="current-secret")
    assert submit(signed(make_pcs(), key=b"old-secret"), tenant="rotating").status_code == 401
    assert submit(signed(make_pcs(), key=b"future-secret"), tenant="rotating").status_code == 401
    response = submit(signed(make_pcs(), key=b"current-secret"), tenant="rotating")
    assert response.status_code == 200
    assert PcsRecord.objects.get(pcs_id=response.json()["pcs_id"]).key_id == "current"


def test_a_bad_signature_on_a_replay_is_still_401(hmac_default_tenant, submit):
    pcs = signed(make_pcs())
    assert submit(pcs).status_code == 200
    pcs["sig"] = signed(dict(pcs), key=b"wrong")["sig"]
    assert submit(pcs).status_code == 401
