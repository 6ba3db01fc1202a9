"""The rate limit as operators run the service: several workers share one bucket; a dead Redis degrades."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import redis
import requests
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from flk_site.testing import make_pcs, signed

HEADERS = {"Content-Type": "application/json"}
METRICS_AUTH = ("scraper", "s3cret-scrape")


def _post(url: str) -> int:
    return requests.post(f"{url}/v1/pcs/submit", data=json.dumps(signed(make_pcs())), headers=HEADERS,
                         timeout=10).status_code  # fmt: skip


def _answering_pids(service) -> set[int]:
    return {json.loads(line)["pid"] for line in service.log_path.read_text().splitlines()
            if line.startswith("{") and '"http_access"' in line}  # fmt: skip


def test_two_workers_share_one_bucket(gunicorn_service):
    redis.Redis.from_url(settings.REDIS_URL).delete("flk:bucket:default")
    service = gunicorn_service(workers=2, TOKEN_RATE="0.01", TOKEN_BURST="6")
    statuses: list[int] = []
    # Rounds of 24 until both workers have answered (a worker still starting leaves every request to the
    # other); at 0.01 tokens per second the bucket gains nothing meanwhile.
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):
            statuses += pool.map(lambda _: _post(service.url), range(24))
            if len(_answering_pids(service)) == 2:
                break
    assert len(_answering_pids(service)) == 2, "both workers must have answered for the test to show sharing"
    assert statuses.count(200) == 6  # per-process buckets would let up to 12 through
    assert statuses.count(429) == len(statuses) - 6


def test_with_redis_on_a_closed_port_ingest_works_and_counts_the_degradation(gunicorn_service):
    service = gunicorn_service(
        workers=1, REDIS_URL="redis://127.0.0.1:1/0", METRICS_USER=METRICS_AUTH[0], METRICS_PASS=METRICS_AUTH[1]
    )
    assert [_post(service.url) for _ in range(5)] == [200] * 5
    scraped = requests.get(f"{service.url}/metrics", auth=METRICS_AUTH, timeout=10).text
    degraded = {s.name: s.value for f in text_string_to_metric_families(scraped) for s in f.samples}
    assert degraded["flk_rate_limit_degraded_total"] == 5
