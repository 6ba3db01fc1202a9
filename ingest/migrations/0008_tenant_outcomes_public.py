# Outcome reads need an API key unless a tenant is marked readable without one (closed by default).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0007_audit_independent_of_the_verdict'),
    ]

    operations = [
        migrations.AddField(
            model_name='tenant',
            name='outcomes_public',
            field=models.BooleanField(default=False, help_text='Off: GET /v1/pcs/<pcs_id> needs one of the tenant\'s API keys, and with none nobody reads. On: anyone who names the tenant and a pcs_id reads the outcome.', verbose_name='outcomes readable without an API key'),
        ),
    ]
