"""/metrics-style collector: queue depth and the age of the oldest waiting item per tenant."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry

from review.metrics import review_queue_collector


def _scrape() -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(review_queue_collector())
    values = {}
    for family in registry.collect():
        for sample in family.samples:
            values[(sample.name, sample.labels["tenant"])] = sample.value
    return values


def test_depth_and_oldest_age_per_tenant(queue_items):
    queue_items(3, tenant="acme", age=timedelta(hours=2))
    queue_items(1, tenant="other", age=timedelta(minutes=5))
    values = _scrape()
    assert values[("flk_review_queue_depth", "acme")] == 3
    assert values[("flk_review_queue_depth", "other")] == 1
    assert 7190 <= values[("flk_review_queue_oldest_age_seconds", "acme")] <= 7300
    assert 290 <= values[("flk_review_queue_oldest_age_seconds", "other")] <= 400


def test_labelled_items_leave_the_depth(queue_items):
    from review.models import ReviewItem

    items = queue_items(2, tenant="acme")
    ReviewItem.objects.filter(pk=items[0].pk).update(stage="done")
    assert _scrape()[("flk_review_queue_depth", "acme")] == 1


def test_the_collector_is_served_on_metrics(queue_items, client, settings):
    import base64

    settings.METRICS_USER, settings.METRICS_PASS = "scraper", "scrape-secret"
    queue_items(1, tenant="acme")
    auth = "Basic " + base64.b64encode(b"scraper:scrape-secret").decode()
    body = client.get("/metrics", HTTP_AUTHORIZATION=auth).content.decode()
    assert 'flk_review_queue_depth{tenant="acme"} 1.0' in body
