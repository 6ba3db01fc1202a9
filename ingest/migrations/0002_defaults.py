"""The default tenant and VerifyParams version 1 with the protocol's defaults, active."""

from __future__ import annotations

from django.db import migrations
from django.utils import timezone


def create_defaults(apps, schema_editor):
    Tenant = apps.get_model("ingest", "Tenant")
    VerifyParams = apps.get_model("ingest", "VerifyParams")
    # The default tenant's algorithm and keys come from PCS_SIGN_ALG and its key variables at run time.
    Tenant.objects.get_or_create(name="default", defaults={"sign_alg": "none"})
    if not VerifyParams.objects.exists():
        VerifyParams.objects.create(
            version=1,
            is_active=True,
            reason="The protocol's defaults (the field defaults of VerifyParams in ingest/models.py).",
            activated_at=timezone.now(),
        )


class Migration(migrations.Migration):
    dependencies = [("ingest", "0001_initial")]
    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
