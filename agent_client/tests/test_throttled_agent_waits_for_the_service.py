"""Against the real service's rate limit, the agent waits as Retry-After says and delivers everything."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agent_client.builder import build_pcs
from agent_client.outbox import Outbox
from agent_client.sender import DELIVERED, Sender
from ingest.models import PcsRecord


@pytest.mark.slow
def test_a_throttled_agent_honours_retry_after_and_loses_nothing(gunicorn_service, tmp_path):
    service = gunicorn_service(TOKEN_RATE="1", TOKEN_BURST="1")
    cloud = np.random.default_rng(21).random((300, 3))
    batch = [
        build_pcs(shard_id="throttled", epoch=i, seed=1, points=cloud, alg="hmac", key=b"testkey") for i in range(3)
    ]
    # A backoff far shorter than the service's Retry-After and only four tries: ignoring Retry-After would
    # spend the tries within milliseconds and dead-letter the PCS.
    with Outbox(tmp_path) as box:
        sender = Sender(service.url, box, max_attempts=4, base_delay=0.001, max_delay=0.002)
        start = time.monotonic()
        results = [sender.submit(pcs) for pcs in batch]
        elapsed = time.monotonic() - start
        assert [r.outcome for r in results] == [DELIVERED] * 3
        assert box.dead_letters() == [] and box.pending() == []
    assert max(r.attempts for r in results) >= 2  # the service did throttle
    assert elapsed >= 1.0
    assert PcsRecord.objects.filter(shard_id="throttled").count() == 3
