"""VerifyParams and what-if reports move here from ingest: state only, the tables keep their names."""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("ingest", "0012_batch_job"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='VerifyParams',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('version', models.PositiveIntegerField(unique=True)),
                        ('is_active', models.BooleanField(default=False)),
                        ('tol_d', models.FloatField(default=0.15, validators=[django.core.validators.MinValueValidator(0.0)], verbose_name='tolD')),
                        ('tol_coh', models.FloatField(default=0.05, validators=[django.core.validators.MinValueValidator(0.0)], verbose_name='tolCoh')),
                        ('budget_tol', models.FloatField(default=0.01, validators=[django.core.validators.MinValueValidator(0.0)], verbose_name='budget tolerance')),
                        ('base', models.FloatField(default=0.1, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)])),
                        ('alpha', models.FloatField(default=0.3, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)])),
                        ('beta', models.FloatField(default=0.5, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)])),
                        ('gamma', models.FloatField(default=0.2, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)])),
                        ('d0', models.FloatField(default=2.2, verbose_name='D0')),
                        ('sticky_coh_min', models.FloatField(default=0.7)),
                        ('sticky_d_max', models.FloatField(default=1.5)),
                        ('non_sticky_d_min', models.FloatField(default=2.6)),
                        ('w_d', models.FloatField(default=0.35, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)], verbose_name='weight of D̂ in the score')),
                        ('w_coh', models.FloatField(default=0.4, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)], verbose_name='weight of coh★ in the score')),
                        ('w_r', models.FloatField(default=0.25, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)], verbose_name='weight of r in the score')),
                        ('r0', models.FloatField(default=0.65, validators=[django.core.validators.MinValueValidator(1e-09)], verbose_name='reference r')),
                        ('score_kind', models.CharField(choices=[('reference', "reference: the seed's formula, fixed references r0 and caps for every tenant"), ('centred', "centred: distances from each tenant's benign centre, in its spread, global weights"), ('fitted', 'fitted: centred, with weights fitted per tenant on labels outside its calibration set')], default='reference', help_text='How the conformal score is computed (calibration.scoring). centred and fitted are fitted per tenant at each recalibration on a fold of its benign audit labels (1 in 5, by sha256 of pcs_id) that never calibrates it, and on anomalous labels; the guarantee holds as before. r0 is used by reference only.', max_length=16, verbose_name='score kind')),
                        ('delta', models.FloatField(default=0.05)),
                        ('reject_delta', models.FloatField(default=0.005)),
                        ('n_min', models.PositiveIntegerField(default=100, verbose_name='minimum calibration size')),
                        ('audit_rate', models.FloatField(default=0.02, help_text='Share of PCS drawn at random for a blind label, whatever their verdict (the calibration sample).', validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)], verbose_name='audit sample share')),
                        ('bootstrap_audit_rate', models.FloatField(default=0.2, help_text='The audit share of a tenant whose own calibration set is still under n_min, so that it reaches n_min after about n_min / share labelled PCS instead of n_min / audit share.', validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)], verbose_name='audit sample share until n_min')),
                        ('dedup_ttl_days', models.PositiveIntegerField(default=14, verbose_name='dedup TTL (days)')),
                        ('reason', models.TextField()),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('activated_at', models.DateTimeField(blank=True, null=True)),
                        ('activated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'verify params version',
                        'db_table': 'ingest_verifyparams',
                        'ordering': ['-version'],
                    },
                ),
                migrations.CreateModel(
                    name='WhatIfReport',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('baseline_version', models.PositiveIntegerField(blank=True, help_text='The active version compared against.', null=True)),
                        ('sample_size', models.PositiveIntegerField(default=10000, verbose_name='last N stored PCS')),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], default='pending', max_length=8)),
                        ('examined', models.PositiveIntegerField(default=0)),
                        ('changed', models.PositiveIntegerField(default=0)),
                        ('transitions', models.JSONField(blank=True, default=dict, help_text="{'accept→escalate': count, ...}")),
                        ('examples', models.JSONField(blank=True, default=list, help_text='A few changed PCS per transition.')),
                        ('calibration', models.JSONField(blank=True, default=list, help_text='Per tenant: calibration size and threshold under each version, and the share of recent audited PCS each version would not accept.')),
                        ('error', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('params', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='whatif_reports', to='policy.verifyparams')),
                    ],
                    options={
                        'verbose_name': 'what-if report',
                        'db_table': 'ingest_whatifreport',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='verifyparams',
                    constraint=models.UniqueConstraint(condition=models.Q(('is_active', True)), fields=('is_active',), name='one_active_verify_params'),
                ),
            ],
        ),
    ]
