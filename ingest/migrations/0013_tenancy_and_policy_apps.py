"""Tenants and keys moved to the tenancy app, VerifyParams and what-if reports to the policy app.

No table changes: the models keep their tables, the state follows them, and the foreign keys of PcsRecord
and BatchJob point to tenancy.Tenant. Content types, with their permissions and admin history, are renamed.
"""

import django.db.models.deletion
from django.db import migrations, models


MOVED = {"tenant": "tenancy", "signingkey": "tenancy", "apikey": "tenancy", "verifyparams": "policy",
         "whatifreport": "policy"}


def _move_content_types(apps, schema_editor, *, forward: bool) -> None:
    """Give the moved models' content types their new app label, so that permissions granted to groups and
    users, and the admin's history, follow them. Where both labels exist (a content type was already created
    under the new one), the old one's permissions and history are merged into it and the old one deleted."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    LogEntry = apps.get_model("admin", "LogEntry")
    db = schema_editor.connection.alias
    for model, app in MOVED.items():
        source, target = ("ingest", app) if forward else (app, "ingest")
        old = ContentType.objects.using(db).filter(app_label=source, model=model).first()
        if old is None:
            continue
        new = ContentType.objects.using(db).filter(app_label=target, model=model).first()
        if new is None:
            old.app_label = target
            old.save(update_fields=["app_label"])
            continue
        for permission in Permission.objects.using(db).filter(content_type=old):
            kept = Permission.objects.using(db).filter(content_type=new, codename=permission.codename).first()
            if kept is None:
                permission.content_type = new
                permission.save(update_fields=["content_type"])
                continue
            for group in permission.group_set.all():
                group.permissions.add(kept)
            for user in permission.user_set.all():
                user.user_permissions.add(kept)
            permission.delete()
        LogEntry.objects.using(db).filter(content_type=old).update(content_type=new)
        old.delete()


def move_content_types(apps, schema_editor) -> None:
    _move_content_types(apps, schema_editor, forward=True)


def restore_content_types(apps, schema_editor) -> None:
    _move_content_types(apps, schema_editor, forward=False)


class Migration(migrations.Migration):

    dependencies = [
        ("ingest", "0012_batch_job"),
        ("tenancy", "0001_initial"),
        ("policy", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='signingkey',
                    name='tenant',
                ),
                migrations.AlterField(
                    model_name='batchjob',
                    name='tenant',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenancy.tenant'),
                ),
                migrations.AlterField(
                    model_name='pcsrecord',
                    name='tenant',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='records', to='tenancy.tenant'),
                ),
                migrations.RemoveField(
                    model_name='verifyparams',
                    name='activated_by',
                ),
                migrations.RemoveField(
                    model_name='verifyparams',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='whatifreport',
                    name='params',
                ),
                migrations.RemoveField(
                    model_name='whatifreport',
                    name='created_by',
                ),
                migrations.DeleteModel(
                    name='ApiKey',
                ),
                migrations.DeleteModel(
                    name='SigningKey',
                ),
                migrations.DeleteModel(
                    name='Tenant',
                ),
                migrations.DeleteModel(
                    name='VerifyParams',
                ),
                migrations.DeleteModel(
                    name='WhatIfReport',
                ),
            ],
        ),
        migrations.RunPython(move_content_types, restore_content_types),
    ]
