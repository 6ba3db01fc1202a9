"""Which labels form a tenant's quantile: benign audit samples, newest first, within the window and size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calibration import services
from calibration.models import GLOBAL_SET, CalibrationSnapshot, TenantCalibration

pytestmark = pytest.mark.django_db


def scores_of(tenant: str) -> list[float]:
    services.recalibrate_tenant(tenant, delta=0.05, n_min=100, params_version=1)
    return CalibrationSnapshot.objects.filter(tenant=tenant).latest("id").scores


def add(tenant, pcs_id, score, label="benign", provenance="audit", **kwargs):
    services.record_label(tenant=tenant, pcs_id=pcs_id, score=score, label=label, provenance=provenance, **kwargs)


def test_only_benign_audit_samples_form_the_quantile_by_default():
    add("acme", "a", 0.1)
    add("acme", "b", 0.2, label="anomalous")
    add("acme", "c", 0.3, provenance="escalation")
    add("acme", "d", None)  # stored without a score: cannot be calibrated on
    assert scores_of("acme") == [0.1]


def test_the_switch_adds_benign_escalation_labels_to_the_quantile():
    add("acme", "a", 0.1)
    add("acme", "c", 0.3, provenance="escalation")
    TenantCalibration.objects.create(tenant="acme", include_escalation_labels=True)
    assert scores_of("acme") == [0.1, 0.3]
    assert scores_of(GLOBAL_SET) == [0.1]  # the global set stays an audit sample


def test_the_oldest_labels_leave_first_when_the_set_is_full(settings):
    settings.FLK_CALIBRATION_MAX_SIZE = 3
    now = timezone.now()
    for n in range(5):
        add("acme", f"p{n}", n / 10, labelled_at=now - timedelta(hours=10 - n))
    assert scores_of("acme") == [0.2, 0.3, 0.4]


def test_labels_older_than_the_window_are_left_out(settings):
    settings.FLK_CALIBRATION_WINDOW_DAYS = 30
    add("acme", "old", 0.9, labelled_at=timezone.now() - timedelta(days=31))
    add("acme", "new", 0.1)
    assert scores_of("acme") == [0.1]


def test_a_snapshot_records_what_it_was_built_from():
    add("acme", "a", 0.1)
    result = services.recalibrate_tenant("acme", delta=0.1, n_min=100, params_version=7)
    row = CalibrationSnapshot.objects.filter(tenant="acme").latest("id")
    assert (row.n, row.delta, row.params_version, row.pk) == (1, 0.1, 7, result.snapshot_id)
    assert len(row.content_hash) == 64
    assert row.threshold is None  # infinite with one score
