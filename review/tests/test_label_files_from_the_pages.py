"""Labels go out as CSV and JSON Lines from the labels page (filtered like the queue) and come back in."""

from __future__ import annotations

import csv
import io
import json

from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from calibration.models import CalibrationLabel
from calibration.tests.labels_on_file import store_varied_labels, stored_labels
from flk_site.testing import logged_in


def _body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_the_csv_export_carries_provenance_reviewer_and_time_and_follows_the_filters(make_user, db):
    store_varied_labels()
    alice = logged_in(make_user("alice"))
    assert b'id="export-csv"' in alice.get("/review/labels/").content
    response = alice.get("/review/labels/export.csv?tenant=acme&kind=audit")
    assert response["Content-Disposition"].startswith('attachment; filename="labels-')
    (row,) = list(csv.DictReader(io.StringIO(_body(response))))
    assert (row["pcs_id"], row["provenance"], row["inclusion_probability"], row["origin"]) == (
        "a" * 64, "audit", "0.02", "review:alice",
    )  # fmt: skip
    assert row["labelled_at"].startswith("20")
    everything = list(csv.DictReader(io.StringIO(_body(alice.get("/review/labels/export.csv")))))
    assert len(everything) == 4
    by_prefix = list(csv.DictReader(io.StringIO(_body(alice.get("/review/labels/export.csv?q=bbbb")))))
    assert [r["pcs_id"] for r in by_prefix] == ["b" * 64]
    assert _body(alice.get("/review/labels/export.csv?q=zz")).splitlines() == [",".join(everything[0].keys())]


def test_the_jsonl_export_keeps_a_restricted_reviewer_to_their_tenants(make_user, db):
    store_varied_labels()
    bob = logged_in(make_user("bob", tenants=["beta"]))
    lines = [json.loads(line) for line in _body(bob.get("/review/labels/export.jsonl")).splitlines()]
    assert {line["tenant"] for line in lines} == {"beta"} and len(lines) == 2
    assert _body(bob.get("/review/labels/export.jsonl?tenant=acme")) == ""
    assert bob.get("/review/labels/export.xml").status_code == 404


def test_an_exported_file_imports_back_from_the_page(make_user, db):
    store_varied_labels()
    before = stored_labels()
    admin = make_user("root", staff=True)
    admin.user_permissions.add(Permission.objects.get(codename="add_calibrationlabel"))
    client = logged_in(admin)
    exported = _body(client.get("/review/labels/export.jsonl")).encode()
    CalibrationLabel.objects.all().delete()
    upload = SimpleUploadedFile("labels.jsonl", exported, content_type="application/x-ndjson")
    response = client.post("/review/labels/import/", {"file": upload}, follow=True)
    assert "Imported 4 rows: 4 new" in response.content.decode()
    assert stored_labels() == before
    assert CalibrationLabel.objects.get(pcs_id="a" * 64).origin.startswith("import:root")


def test_import_needs_the_permission_and_a_bad_file_changes_nothing(make_user, db):
    store_varied_labels()
    alice = logged_in(make_user("alice"))
    assert b'id="import-form"' not in alice.get("/review/labels/").content
    upload = SimpleUploadedFile("labels.csv", b"tenant,pcs_id\nacme,x\n")
    assert alice.post("/review/labels/import/", {"file": upload}).status_code == 403
    admin = make_user("root", staff=True)
    admin.user_permissions.add(Permission.objects.get(codename="add_calibrationlabel"))
    client = logged_in(admin)
    upload = SimpleUploadedFile("labels.csv", b"tenant,pcs_id\nacme,x\n")
    page = client.post("/review/labels/import/", {"file": upload}, follow=True).content.decode()
    assert "required column missing" in page and CalibrationLabel.objects.count() == 4
    page = client.post("/review/labels/import/", {"file": SimpleUploadedFile("x.csv", b"\xff\xfe")}, follow=True)
    assert b"not UTF-8" in page.content
