"""Existing labels get the signals of their PCS (while its outcome is stored), so recalibration can rescore them.

Labels whose outcome was already purged keep only their old score; recalibration leaves them out of a snapshot
(and counts them) once the score formula is not known to be theirs. Audit samples stored before the inclusion
probability was recorded get the audit share of the version that verified them.
"""

from django.db import migrations


def backfill(apps, schema_editor):
    CalibrationLabel = apps.get_model("calibration", "CalibrationLabel")
    PcsRecord = apps.get_model("ingest", "PcsRecord")
    VerifyParams = apps.get_model("ingest", "VerifyParams")
    shares = dict(VerifyParams.objects.values_list("version", "audit_rate"))
    for version, share in shares.items():
        PcsRecord.objects.filter(audit_sample=True, audit_probability=0, params_version=version).update(
            audit_probability=share
        )
    for label in CalibrationLabel.objects.filter(signals__isnull=True).iterator(chunk_size=1000):
        record = (
            PcsRecord.objects.filter(tenant__name=label.tenant, pcs_id=label.pcs_id)
            .values("d_hat", "coh_star", "r", "decision", "received_at", "audit_probability", "audit_sample")
            .first()
        )
        if record is None:
            continue
        label.signals = {"D_hat": record["d_hat"], "coh_star": record["coh_star"], "r": record["r"]}
        label.decision = record["decision"]
        label.received_at = record["received_at"]
        if record["audit_sample"] and record["audit_probability"]:
            label.inclusion_probability = record["audit_probability"]
        label.save(update_fields=["signals", "decision", "received_at", "inclusion_probability"])


class Migration(migrations.Migration):
    # It reads ingest.VerifyParams, which ingest 0013 moves to the policy app.
    run_before = [("ingest", "0013_tenancy_and_policy_apps")]
    dependencies = [
        ("review", "0003_index_of_skips"),
        ("ingest", "0007_audit_independent_of_the_verdict"),
        ("calibration", "0002_audit_independent_of_the_verdict"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
