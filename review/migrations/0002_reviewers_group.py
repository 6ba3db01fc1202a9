from __future__ import annotations

from django.db import migrations


def create_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.get_or_create(name="reviewers")


def drop_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="reviewers").delete()


class Migration(migrations.Migration):
    dependencies = [("review", "0001_review_queue"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_group, drop_group)]
