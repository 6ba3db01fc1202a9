from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0008_tenant_outcomes_public"),
    ]

    operations = [
        migrations.AddField(
            model_name="whatifreport",
            name="calibration",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Per tenant: calibration size and threshold under each version, and the share of recent "
                "audited PCS each version would not accept.",
            ),
        ),
    ]
