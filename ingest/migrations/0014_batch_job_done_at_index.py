"""An index on BatchJob.done_at: the sweep of pending batches and the purge of finished ones use it."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0013_tenancy_and_policy_apps'),
        ('tenancy', '0001_initial'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='batchjob',
            index=models.Index(fields=['done_at'], name='batch_job_done_at'),
        ),
    ]
