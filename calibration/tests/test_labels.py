"""Labels: recorded, replaced by a relabel, withdrawn, and read back."""

from __future__ import annotations

import pytest

from calibration import services
from calibration.models import CalibrationLabel

pytestmark = pytest.mark.django_db


def test_a_relabel_replaces_the_previous_label():
    services.record_label(tenant="acme", pcs_id="p1", score=0.2, label="benign", provenance="audit")
    services.record_label(tenant="acme", pcs_id="p1", score=0.2, label="anomalous", provenance="escalation")
    assert CalibrationLabel.objects.filter(tenant="acme").count() == 1
    assert services.label_for("acme", "p1")["label"] == "anomalous"
    assert services.label_for("acme", "p1")["provenance"] == "escalation"


def test_labels_are_kept_per_tenant():
    services.record_label(tenant="acme", pcs_id="p1", score=0.2, label="benign", provenance="audit")
    assert services.label_for("other", "p1") is None


def test_a_withdrawn_label_is_gone():
    services.record_label(tenant="acme", pcs_id="p1", score=0.2, label="benign", provenance="audit")
    services.withdraw_label(tenant="acme", pcs_id="p1")
    assert services.label_for("acme", "p1") is None


@pytest.mark.parametrize(("label", "provenance"), [("good", "audit"), ("benign", "somewhere")])
def test_an_unknown_label_or_provenance_is_refused_and_stores_nothing(label, provenance):
    with pytest.raises(ValueError):
        services.record_label(tenant="acme", pcs_id="p1", score=0.2, label=label, provenance=provenance)
    assert not CalibrationLabel.objects.exists()


def test_committed_labels_lead_to_a_snapshot_of_the_tenant(django_capture_on_commit_callbacks):
    from calibration.models import CalibrationSnapshot

    services.clear_pending("acme")
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            services.record_label(tenant="acme", pcs_id=f"p{n}", score=n / 10, label="benign", provenance="audit")
    # Tasks run eagerly in this process (the debounce is observed with a real worker in test_worker_recalibrates).
    assert CalibrationSnapshot.objects.filter(tenant="acme").latest("id").scores == [0.0, 0.1, 0.2, 0.3, 0.4]
