# PCS 0.2 signs every field. Tenants that existed before it keep accepting 0.1 until an admin raises their
# minimum (docs/operators/deployment.md, "Rollout of PCS 0.2"); tenants created from now on accept 0.2 only.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0009_whatif_calibration"),
    ]

    operations = [
        # Existing rows get 0.1 from the column default of this first step...
        migrations.AddField(
            model_name="tenant",
            name="min_pcs_version",
            field=models.CharField(
                choices=[
                    ("0.1", "0.1: signs eight fields (ft.degraded, N_j, scales, regime are unauthenticated)"),
                    ("0.2", "0.2: signs every field"),
                ],
                default="0.1",
                max_length=8,
                verbose_name="minimum PCS version",
            ),
        ),
        # ...and new ones get 0.2.
        migrations.AlterField(
            model_name="tenant",
            name="min_pcs_version",
            field=models.CharField(
                choices=[
                    ("0.1", "0.1: signs eight fields (ft.degraded, N_j, scales, regime are unauthenticated)"),
                    ("0.2", "0.2: signs every field"),
                ],
                default="0.2",
                help_text="PCS of an older version are refused (403 pcs_version_<this>_required). Raise it once "
                "flk_pcs_version_total shows no older PCS from this tenant. For the 'default' tenant the "
                "PCS_MIN_VERSION environment variable decides.",
                max_length=8,
                verbose_name="minimum PCS version",
            ),
        ),
        migrations.AlterField(
            model_name="pcsrecord",
            name="signed_digest",
            field=models.CharField(
                help_text="SHA-256 that a replay must match: of the signed subset (PCS 0.1), of the content, every "
                "field but sig, attempt and sent_at (PCS 0.2).",
                max_length=64,
            ),
        ),
    ]
