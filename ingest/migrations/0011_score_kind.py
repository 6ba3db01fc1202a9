# The score kind of a VerifyParams version (issue 20): reference (the seed's formula, the default), centred or
# fitted per tenant at recalibration (calibration.scoring).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0010_tenant_min_pcs_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="verifyparams",
            name="score_kind",
            field=models.CharField(
                choices=[
                    ("reference", "reference: the seed's formula, fixed references r0 and caps for every tenant"),
                    ("centred", "centred: distances from each tenant's benign centre, in its spread, global weights"),
                    ("fitted", "fitted: centred, with weights fitted per tenant on labels outside its calibration set"),
                ],
                default="reference",
                help_text=(
                    "How the conformal score is computed (calibration.scoring). centred and fitted are fitted per "
                    "tenant at each recalibration on a fold of its benign audit labels (1 in 5, by sha256 of pcs_id) "
                    "that never calibrates it, and on anomalous labels; the guarantee holds as before. r0 is used by "
                    "reference only."
                ),
                max_length=16,
                verbose_name="score kind",
            ),
        ),
    ]
