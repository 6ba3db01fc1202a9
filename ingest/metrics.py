"""Prometheus metrics of the submit path, and the ``/metrics`` exposition.

Names are an interface: alert rules, dashboards and other apps' collectors refer to them. Under gunicorn
each worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess
mode) and ``/metrics`` merges them, so any worker answers for all. Recording a sample never raises into a
request: a metrics failure must not change an answer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from django.conf import settings
from django.utils.module_loading import import_string
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric, generate_latest
from prometheus_client import multiprocess as prom_multiprocess

log = logging.getLogger("flk.metrics")

INGEST = Counter("flk_ingest", "Submissions that reached the submit path (after the size limit).", ["tenant"])
DEDUP_HITS = Counter("flk_dedup_hits", "Submissions answered with a stored outcome.", ["tenant"])
ACCEPTED = Counter("flk_accepted", "New outcomes accepted (200).", ["tenant"])
ESCALATED = Counter("flk_escalated", "New outcomes escalated for review (202).", ["tenant"])
REJECTED = Counter("flk_rejected", "New outcomes rejected by conformal scoring (202).", ["tenant"])
# Rollout of PCS 0.2: a tenant's minimum can be raised once its 0.1 series stops growing.
PCS_VERSIONS = Counter(
    "flk_pcs_version",
    "PCS whose schema and signature passed, by protocol version (also those the tenant's minimum refuses).",
    ["tenant", "version"],
)
SIGNATURE_FAILURES = Counter("flk_signature_failures", "Submissions refused for their signature.", ["tenant", "code"])
HTTP_RESPONSES = Counter("flk_http_responses", "Answers of the API by endpoint and status code.", ["endpoint", "code"])
RATE_LIMITED = Counter("flk_rate_limited", "Submissions refused with 429.", ["tenant"])
PREAUTH_REFUSED = Counter(
    "flk_preauth_refused",
    "Submissions refused before authentication: address (429), wal_budget (503), wal_full (503).",
    ["reason"],
)
RATE_LIMIT_DEGRADED = Counter(
    "flk_rate_limit_degraded", "Rate-limit decisions taken per process because Redis was unreachable."
)
WAL_APPENDS = Counter("flk_wal_appends", "Records appended to the inbox WAL.")
WAL_FSYNC_BATCHES = Counter("flk_wal_fsync_batches", "fsync calls of the inbox WAL (one per group commit).")
WAL_ERRORS = Counter("flk_wal_errors", "Failed inbox WAL writes or syncs.")
WAL_REPLAYED = Counter("flk_wal_replayed", "WAL records verified and stored by replay.")
WAL_REPLAY_BACKLOG = Gauge(
    "flk_wal_replay_backlog", "WAL records without a stored outcome seen by the last replay.", multiprocess_mode="max"
)
# Buckets around the budget: verification is sub-millisecond, a request tens of milliseconds at worst.
VERIFY_LATENCY = Histogram(
    "flk_verify_latency_seconds",
    "Time spent in the pure verification of one PCS.",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
)
BATCH_ITEMS = Histogram(
    "flk_batch_items",
    "PCS per batch of POST /v1/pcs/batch that reached its items (each item is also counted as a submission).",
    ["tenant"],
    buckets=(1, 8, 32, 64, 128, 256, 500, 1000, 5000),
)
REQUEST_DURATION = Histogram(
    "flk_request_duration_seconds",
    "Duration of API requests, from the view's start to its answer.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
_OUTCOME_COUNTERS = {"accept": ACCEPTED, "escalate": ESCALATED, "reject": REJECTED}


def _safely(record: Callable[[], object]) -> None:
    try:
        record()
    except Exception:  # a full disk under the multiprocess dir must not fail a submission
        log.warning("metrics_record_failed", exc_info=True)


def ingested(tenant: str) -> None:
    _safely(lambda: INGEST.labels(tenant).inc())


def batch_observed(tenant: str, items: int) -> None:
    _safely(lambda: BATCH_ITEMS.labels(tenant).observe(items))


def dedup_hit(tenant: str) -> None:
    _safely(lambda: DEDUP_HITS.labels(tenant).inc())


def outcome(tenant: str, decision: str) -> None:
    counter = _OUTCOME_COUNTERS.get(decision)
    if counter is not None:
        _safely(lambda: counter.labels(tenant).inc())


def pcs_version(tenant: str, version: str) -> None:
    _safely(lambda: PCS_VERSIONS.labels(tenant, version).inc())


def signature_failed(tenant: str, code: str) -> None:
    _safely(lambda: SIGNATURE_FAILURES.labels(tenant, code).inc())


def http_response(endpoint: str, code: int, seconds: float) -> None:
    def record() -> None:
        HTTP_RESPONSES.labels(endpoint, str(code)).inc()
        REQUEST_DURATION.labels(endpoint).observe(seconds)

    _safely(record)


def rate_limited(tenant: str) -> None:
    _safely(lambda: RATE_LIMITED.labels(tenant).inc())


def preauth_refused(reason: str) -> None:
    _safely(lambda: PREAUTH_REFUSED.labels(reason).inc())


def rate_limit_degraded() -> None:
    _safely(RATE_LIMIT_DEGRADED.inc)


def verify_observed(seconds: float) -> None:
    _safely(lambda: VERIFY_LATENCY.observe(seconds))


def wal_appended(n: int = 1) -> None:
    _safely(lambda: WAL_APPENDS.inc(n))


def wal_batch_synced() -> None:
    _safely(WAL_FSYNC_BATCHES.inc)


def wal_error() -> None:
    _safely(WAL_ERRORS.inc)


def replayed(n: int = 1) -> None:
    _safely(lambda: WAL_REPLAYED.inc(n))


def set_replay_backlog(n: int) -> None:
    _safely(lambda: WAL_REPLAY_BACKLOG.set(n))


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _Collected:
    """Families already collected, so that one failing collector is skipped instead of failing the scrape."""

    def __init__(self, families: list[Metric]):
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _extra_families() -> list[Metric]:
    """The families of the scrape-time collectors named in FLK_METRICS_COLLECTORS (dotted paths of callables
    returning a collector); a collector that fails is logged and left out."""
    families: list[Metric] = []
    for path in getattr(settings, "FLK_METRICS_COLLECTORS", ()):
        try:
            families.extend(import_string(path)().collect())
        except Exception:  # a broken collector (or its database) must not hide the others
            log.warning("metrics_collector_failed", extra={"event": "metrics_collector_failed", "collector": path},
                        exc_info=True)  # fmt: skip
    return families


def exposition() -> bytes:
    """The text exposition of every metric: this process's or, under gunicorn, all workers' merged."""
    if multiprocess_enabled():
        # A fresh registry per scrape: MultiProcessCollector reads the files of live and dead workers.
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_Collected(_extra_families()))
    return generate_latest(registry) + generate_latest(extra)
