"""Upgrading a database of the release before the tenancy and policy apps keeps every row and every grant.

The models moved without their tables: ``ingest.0013_tenancy_and_policy_apps`` changes the migration state only
and renames the content types, so that a group's permissions on tenants and VerifyParams, and the admin's
history of them, follow the models. The test runs the real migrations on the test PostgreSQL database, from
the state of the release before (``ingest 0012``) with its data, forward and back.
"""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ingest.models import PcsRecord
from policy.models import VerifyParams
from tenancy.models import SigningKey, Tenant

BEFORE = [("ingest", "0012_batch_job"), ("tenancy", None), ("policy", None)]
pytestmark = pytest.mark.django_db(transaction=True)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    ContentType.objects.clear_cache()
    return executor


def _latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _as_before_the_move() -> None:
    """Content types as the release before had them: under ingest, none under tenancy or policy."""
    for model in ("tenant", "signingkey", "apikey", "verifyparams", "whatifreport"):
        ContentType.objects.filter(app_label__in=("tenancy", "policy"), model=model).update(app_label="ingest")


def test_rows_grants_and_history_follow_the_moved_models():
    try:
        _as_before_the_move()
        old = _migrate(BEFORE).loader.project_state(BEFORE[0]).apps
        tenant = old.get_model("ingest", "Tenant").objects.create(name="acme", sign_alg="hmac", min_pcs_version="0.2")
        old.get_model("ingest", "SigningKey").objects.create(
            tenant=tenant, key_id="k1", algorithm="hmac", secret="s" * 32
        )
        old.get_model("ingest", "VerifyParams").objects.create(version=7, reason="before the move")
        old.get_model("ingest", "PcsRecord").objects.create(
            tenant=tenant, pcs_id="a" * 64, shard_id="s", epoch=1, signed_digest="d" * 64, body={}, d_hat=1.2,
            coh_star=0.8, r=0.5, budget=0.5, regime="mixed", recomputed_d_hat=1.2, status_code=200,
            decision="accept", response={}, params_version=7, received_at="2026-12-01T00:00:00Z",
            verified_at="2026-12-01T00:00:00Z",
        )  # fmt: skip
        tenant_type = ContentType.objects.get(app_label="ingest", model="tenant")
        params_type = ContentType.objects.get(app_label="ingest", model="verifyparams")
        operators = Group.objects.create(name="operators")
        operators.permissions.add(*Permission.objects.filter(content_type__in=(tenant_type, params_type)))
        LogEntry.objects.create(
            user=User.objects.create_user("admin"),
            content_type=tenant_type,
            object_id=str(tenant.pk),
            object_repr="acme",
            action_flag=ADDITION,
        )
        # A content type under the new label that already exists (a partial earlier upgrade) is merged into.
        early = ContentType.objects.create(app_label="policy", model="verifyparams")
        Permission.objects.create(content_type=early, codename="change_verifyparams", name="Can change")

        _migrate(_latest())

        assert Tenant.objects.get(name="acme").signing_keys.get().key_id == "k1"
        assert VerifyParams.objects.get(version=7).reason == "before the move"
        assert PcsRecord.objects.get(pcs_id="a" * 64).tenant.name == "acme"
        assert not ContentType.objects.filter(app_label="ingest", model__in=("tenant", "verifyparams")).exists()
        granted = set(operators.permissions.values_list("content_type__app_label", "codename"))
        assert granted == {("tenancy", f"{action}_tenant") for action in ("add", "change", "delete", "view")} | {
            ("policy", f"{action}_verifyparams") for action in ("add", "change", "delete", "view")
        }
        assert LogEntry.objects.get(object_repr="acme").content_type == ContentType.objects.get_for_model(Tenant)

        _migrate(BEFORE)  # and back: the release before finds its rows and grants under ingest again
        assert ContentType.objects.get(app_label="ingest", model="tenant").permission_set.count() == 4
        assert old.get_model("ingest", "SigningKey").objects.get().tenant.name == "acme"
    finally:
        _migrate(_latest())
        ContentType.objects.clear_cache()
    assert SigningKey.objects.get().tenant.name == "acme"
