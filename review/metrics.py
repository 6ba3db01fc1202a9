"""Review queue metrics, read from the database at scrape time (registered in FLK_METRICS_COLLECTORS).

Items are claimed and labelled by other processes, so depth and age are read where they are stored. One
grouped query per scrape, one row per tenant.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from review.models import ReviewItem


class ReviewQueueCollector:
    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("flk_review_queue_depth", "Review items waiting for a label", labels=["tenant"])
        oldest = GaugeMetricFamily(
            "flk_review_queue_oldest_age_seconds",
            "Age of the oldest review item waiting for a label",
            labels=["tenant"],
        )
        now = timezone.now()
        rows = (
            ReviewItem.objects.exclude(stage=ReviewItem.Stage.DONE)  # first, second opinion and adjudication
            .values("tenant")
            .annotate(n=Count("id"), first=Min("received_at"))
            .order_by("tenant")
        )
        for row in rows:
            depth.add_metric([row["tenant"]], row["n"])
            oldest.add_metric([row["tenant"]], max(0.0, (now - row["first"]).total_seconds()))
        yield depth
        yield oldest

    def describe(self) -> list[Metric]:
        return []


def review_queue_collector() -> ReviewQueueCollector:
    return ReviewQueueCollector()
