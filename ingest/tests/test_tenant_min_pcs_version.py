"""A tenant's minimum PCS version: older PCS are refused with a 403 whose code names the required version,
the default tenant takes its minimum from PCS_MIN_VERSION, and every signed PCS is counted by version."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import import_module

import pytest
from prometheus_client import REGISTRY

from flk_site.testing import HMAC_KEY, make_pcs, reset_config_memos, signed
from ingest.models import PcsRecord
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db


def counted(tenant: str, version: str) -> float:
    return REGISTRY.get_sample_value("flk_pcs_version_total", {"tenant": tenant, "version": version}) or 0.0


def test_a_0_1_pcs_for_a_tenant_requiring_0_2_is_refused_with_the_version_named(make_tenant, submit):
    make_tenant("acme", hmac={"k1": HMAC_KEY.decode()}, min_pcs_version="0.2")
    pcs = signed(make_pcs(version="0.1"))
    response = submit(pcs, tenant="acme")
    assert response.status_code == 403
    assert response.json() == {
        "code": "pcs_version_0.2_required",
        "detail": "tenant 'acme' accepts PCS version 0.2 or later; this PCS is version 0.1: upgrade the agent "
        "(flk-agent emits 0.2 by default)",
        "version": "0.1",
        "required_version": "0.2",
        "pcs_id": pcs["pcs_id"],
    }
    assert not PcsRecord.objects.exists()
    assert submit(signed(make_pcs()), tenant="acme").status_code == 200


def test_a_tenant_at_0_1_accepts_both_versions(make_tenant, submit):
    make_tenant("legacy", hmac={"k1": HMAC_KEY.decode()}, min_pcs_version="0.1")
    assert submit(signed(make_pcs(version="0.1")), tenant="legacy").status_code == 200
    assert submit(signed(make_pcs(version="0.1.4")), tenant="legacy").status_code == 200
    assert submit(signed(make_pcs()), tenant="legacy").status_code == 200


def test_new_tenants_require_0_2():
    assert Tenant.objects.create(name="fresh").min_pcs_version == "0.2"


def test_the_default_tenant_takes_its_minimum_from_the_environment(hmac_default_tenant, settings, submit):
    assert settings.PCS_MIN_VERSION == "0.1"  # the default when PCS_MIN_VERSION is unset
    Tenant.objects.filter(name="default").update(min_pcs_version="0.2")  # ignored: the environment decides
    assert submit(signed(make_pcs(version="0.1"))).status_code == 200
    settings.PCS_MIN_VERSION = "0.2"
    Tenant.objects.filter(name="default").update(min_pcs_version="0.1")  # ignored too
    reset_config_memos()  # what a restart with the new environment does
    response = submit(signed(make_pcs(version="0.1")))
    assert response.status_code == 403 and response.json()["code"] == "pcs_version_0.2_required"


def test_each_signed_pcs_is_counted_by_version_and_tenant_refused_or_not(make_tenant, submit):
    make_tenant("counted", hmac={"k1": HMAC_KEY.decode()})
    before = counted("counted", "0.1"), counted("counted", "0.2")
    submit(signed(make_pcs()), tenant="counted")
    submit(signed(make_pcs()), tenant="counted")
    submit(signed(make_pcs(version="0.1")), tenant="counted")  # refused: the tenant requires 0.2
    submit(signed(make_pcs(version="0.1"), key=b"wrong"), tenant="counted")  # not the tenant's: not counted
    assert (counted("counted", "0.1") - before[0], counted("counted", "0.2") - before[1]) == (1, 2)


def test_an_unknown_pcs_min_version_stops_the_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "flk_site.settings", "DJANGO_DEBUG": "1",
             "FLK_VAR_DIR": str(tmp_path), "PCS_MIN_VERSION": "0.3"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "PCS_MIN_VERSION='0.3' must be one of 0.1, 0.2" in result.stderr


def test_tenants_that_existed_before_0_2_are_migrated_at_0_1():
    # The column is added with default 0.1, which fills the rows already there, then its default becomes 0.2.
    migration = import_module("ingest.migrations.0010_tenant_min_pcs_version").Migration
    added, changed = migration.operations[:2]
    assert (added.name, added.field.default) == ("min_pcs_version", "0.1")
    assert (changed.name, changed.field.default) == ("min_pcs_version", "0.2")
    assert Tenant._meta.get_field("min_pcs_version").default == "0.2"


def test_admins_set_the_minimum_on_the_tenant_page(admin_client, make_tenant):
    tenant = make_tenant("acme", hmac={"k1": HMAC_KEY.decode()}, min_pcs_version="0.1")
    page = admin_client.get(f"/admin/tenancy/tenant/{tenant.pk}/change/").content.decode()
    assert 'name="min_pcs_version"' in page
    assert '<option value="0.1" selected>' in page and '<option value="0.2">' in page
