"""Tenants and their keys move here from ingest: state only, the tables keep their names (ingest_tenant...)."""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("ingest", "0012_batch_job"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Tenant',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=64, unique=True, validators=[django.core.validators.RegexValidator('^[A-Za-z0-9_.-]{1,64}$')])),
                        ('enabled', models.BooleanField(default=True, help_text="A disabled tenant's requests get 401.")),
                        ('sign_alg', models.CharField(choices=[('none', 'unsigned'), ('hmac', 'HMAC-SHA256'), ('ed25519', 'Ed25519')], default='hmac', help_text="For the 'default' tenant the PCS_SIGN_ALG environment variable decides.", max_length=8, verbose_name='signature algorithm')),
                        ('min_pcs_version', models.CharField(choices=[('0.1', '0.1: signs eight fields (ft.degraded, N_j, scales, regime are unauthenticated)'), ('0.2', '0.2: signs every field')], default='0.2', help_text="PCS of an older version are refused (403 pcs_version_<this>_required). Raise it once flk_pcs_version_total shows no older PCS from this tenant. For the 'default' tenant the PCS_MIN_VERSION environment variable decides.", max_length=8, verbose_name='minimum PCS version')),
                        ('rate_per_second', models.FloatField(blank=True, help_text='Token-bucket refill rate for this tenant; empty uses TOKEN_RATE.', null=True, validators=[django.core.validators.MinValueValidator(0.001)])),
                        ('burst', models.FloatField(blank=True, help_text='Token-bucket size for this tenant; empty uses TOKEN_BURST.', null=True, validators=[django.core.validators.MinValueValidator(1.0)])),
                        ('outcomes_public', models.BooleanField(default=False, help_text="Off: GET /v1/pcs/<pcs_id> needs one of the tenant's API keys, and with none nobody reads. On: anyone who names the tenant and a pcs_id reads the outcome.", verbose_name='outcomes readable without an API key')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'db_table': 'ingest_tenant',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='ApiKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(help_text='What the key is for, e.g. the dashboard that reads outcomes.', max_length=64)),
                        ('prefix', models.CharField(editable=False, help_text="The key's first characters, to recognise it; not secret.", max_length=16, unique=True)),
                        ('digest', models.CharField(editable=False, max_length=64)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_keys', to='tenancy.tenant')),
                    ],
                    options={
                        'verbose_name': 'API key',
                        'db_table': 'ingest_apikey',
                        'ordering': ['tenant', 'name'],
                    },
                ),
                migrations.CreateModel(
                    name='SigningKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key_id', models.CharField(help_text='Named in errors; never the key itself.', max_length=64)),
                        ('algorithm', models.CharField(choices=[('hmac', 'HMAC-SHA256'), ('ed25519', 'Ed25519')], max_length=8)),
                        ('secret', models.TextField(blank=True, help_text='HMAC secret (UTF-8).')),
                        ('public_key_b64', models.CharField(blank=True, help_text='Ed25519 public key, standard base64 of 32 bytes.', max_length=64)),
                        ('valid_from', models.DateTimeField(blank=True, null=True)),
                        ('valid_until', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='signing_keys', to='tenancy.tenant')),
                    ],
                    options={
                        'db_table': 'ingest_signingkey',
                        'ordering': ['tenant', 'key_id'],
                        'constraints': [models.UniqueConstraint(fields=('tenant', 'key_id'), name='signing_key_unique_per_tenant')],
                    },
                ),
            ],
        ),
    ]
