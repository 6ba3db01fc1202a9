"""Audit events name their PCS and outlive its purge; admins may expire an unlabelled audit sample (an event)."""

import django.db.models.deletion
from django.db import migrations, models


def name_the_pcs(apps, schema_editor):
    AuditEvent = apps.get_model("review", "AuditEvent")
    ReviewItem = apps.get_model("review", "ReviewItem")
    for item in ReviewItem.objects.filter(events__isnull=False).distinct().iterator(chunk_size=1000):
        # A queryset UPDATE: the model's append-only save() is not involved in filling the new columns.
        AuditEvent.objects.filter(item=item).update(tenant=item.tenant, pcs_id=item.pcs_id)


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0004_labels_keep_their_signals"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="tenant",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="pcs_id",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="item",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="events",
                to="review.reviewitem",
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("claim", "Claim"),
                    ("label", "Label"),
                    ("undo", "Undo"),
                    ("skip", "Skip"),
                    ("expire", "expire (an audit sample given up without a label)"),
                ],
                max_length=8,
            ),
        ),
        migrations.RunPython(name_the_pcs, migrations.RunPython.noop),
    ]
