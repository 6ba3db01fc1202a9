"""The answers of an async batch are kept as long as its outcomes (the dedup TTL), then purged with them; a
batch still pending is never purged, however old."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from flk_site.testing import make_pcs, signed
from ingest import replay
from ingest.models import BatchJob
from policy.models import VerifyParams

pytestmark = pytest.mark.django_db


def queue(client, n: int) -> str:
    items = [signed(make_pcs()) for _ in range(n)]
    answer = client.generic("POST", "/v1/pcs/batch", json.dumps(items), content_type="application/json",
                            HTTP_PREFER="respond-async")  # fmt: skip
    assert answer.status_code == 202
    return answer.json()["id"]


def test_finished_batches_older_than_the_dedup_ttl_are_purged(
    client, hmac_default_tenant, django_capture_on_commit_callbacks
):
    VerifyParams.objects.filter(is_active=True).update(dedup_ttl_days=7, audit_rate=0.0, bootstrap_audit_rate=0.0)
    with django_capture_on_commit_callbacks(execute=True):  # enqueued on commit; tasks run eagerly here
        old, recent = queue(client, 2), queue(client, 1)
    assert BatchJob.objects.filter(done_at__isnull=False).count() == 2
    BatchJob.objects.filter(id=old).update(done_at=timezone.now() - timedelta(days=8))
    pending = BatchJob.objects.create(tenant=BatchJob.objects.get(id=recent).tenant, body=b"[]", kind="json",
                                      items=0, received_at=timezone.now() - timedelta(days=30))  # fmt: skip

    replay.purge_expired_outcomes()

    assert set(BatchJob.objects.values_list("id", flat=True)) == {BatchJob.objects.get(id=recent).id, pending.id}
    assert client.get(f"/v1/pcs/batch/{old}").status_code == 404
    assert client.get(f"/v1/pcs/batch/{recent}").json()["status"] == "done"
