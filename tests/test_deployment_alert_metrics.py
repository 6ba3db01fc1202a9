"""Every metric an alert rule or the dashboard names is exported by the running service's /metrics."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import promql_parser
import pytest
import requests
import yaml

from flk_site.testing import HMAC_KEY, make_pcs, signed

ROOT = Path(__file__).resolve().parent.parent
METRIC_NAME = re.compile(r"\bflk_[a-z0-9_]+\b")
AUTH = ("prometheus", "scrape-secret")
# The documented metric families (docs/operators/monitoring.md, Metrics); the dashboard may only chart these.
DOCUMENTED_SAMPLES = {
    "flk_ingest_total", "flk_dedup_hits_total", "flk_accepted_total", "flk_escalated_total", "flk_rejected_total",
    "flk_signature_failures_total", "flk_http_responses_total", "flk_rate_limited_total",
    "flk_rate_limit_degraded_total", "flk_wal_appends_total", "flk_wal_fsync_batches_total", "flk_wal_errors_total",
    "flk_wal_replayed_total", "flk_wal_replay_backlog", "flk_verify_latency_seconds_bucket",
    "flk_request_duration_seconds_bucket", "flk_calibration_size", "flk_calibration_threshold",
    "flk_calibration_snapshot_age_seconds", "flk_drift_p_value", "flk_drift_detected", "flk_miscoverage_rate",
    "flk_review_queue_depth", "flk_review_queue_oldest_age_seconds", "flk_pcs_version_total",
    "flk_batch_items_bucket", "flk_batch_items_sum",
}  # fmt: skip


def rule_expressions() -> dict[str, str]:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "flk-verifier.json").read_text())
    return {
        f"{panel['title']} [{target['refId']}]": target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }


def exported_names(exposition: str) -> set[str]:
    """Sample names, plus the names a family's TYPE line promises (counter _total, histogram series)."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            names.add(family)
            if kind == "counter":
                names.add(f"{family}_total")
            if kind == "histogram":
                names |= {f"{family}_bucket", f"{family}_count", f"{family}_sum"}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_every_rule_names_a_metric_and_the_rules_cover_the_operators_questions():
    expressions = rule_expressions()
    assert all(METRIC_NAME.search(expr) for expr in expressions.values())
    used = {name for expr in expressions.values() for name in METRIC_NAME.findall(expr)}
    for needed in ("flk_escalated_total", "flk_verify_latency_seconds_bucket", "flk_signature_failures_total",
                   "flk_dedup_hits_total", "flk_http_responses_total", "flk_wal_errors_total",
                   "flk_wal_replay_backlog", "flk_drift_detected", "flk_miscoverage_alarm", "flk_audit_alarm",
                   "flk_review_queue_oldest_age_seconds"):  # fmt: skip
        assert needed in used


def test_every_rule_and_panel_query_is_valid_promql():
    # Grafana's interval variables become concrete values first, as Grafana does before querying.
    grafana = {"$__rate_interval": "5m", "$__range": "1h", "$tenant": ".*"}
    queries = {**rule_expressions(), **dashboard_expressions()}
    for name, expr in queries.items():
        for variable, value in grafana.items():
            expr = expr.replace(variable, value)
        try:
            promql_parser.parse(expr)
        except ValueError as exc:
            pytest.fail(f"{name}: {exc}")


def test_the_dashboard_charts_only_documented_metrics():
    for title, expr in dashboard_expressions().items():
        unknown = set(METRIC_NAME.findall(expr)) - DOCUMENTED_SAMPLES
        assert not unknown, f"panel {title} uses {sorted(unknown)}"
    charted = {name for expr in dashboard_expressions().values() for name in METRIC_NAME.findall(expr)}
    assert charted == DOCUMENTED_SAMPLES, f"not charted: {sorted(DOCUMENTED_SAMPLES - charted)}"


@pytest.mark.slow
def test_alert_rules_name_only_metrics_the_running_service_exports(gunicorn_service, make_tenant):
    # A tenant of its own: its token bucket in Redis starts full on every run.
    tenant = make_tenant(f"deploy-{uuid.uuid4().hex[:12]}", hmac={"k1": HMAC_KEY.decode()}).name
    service = gunicorn_service(METRICS_USER=AUTH[0], METRICS_PASS=AUTH[1], TOKEN_RATE="0.5", TOKEN_BURST="8")

    def submit(pcs: dict) -> requests.Response:
        return requests.post(f"{service.url}/v1/pcs/submit", json=pcs, headers={"X-Tenant-Id": tenant}, timeout=10)

    accepted = signed(make_pcs())
    assert submit(accepted).status_code == 200
    assert submit(accepted).json()["dedup"] is True
    assert submit(signed(make_pcs(degraded=True))).status_code == 202
    assert submit(signed(make_pcs(), key=HMAC_KEY + b"-wrong")).status_code == 401
    # Past the bucket of 8: throttled.
    assert 429 in [submit(signed(make_pcs())).status_code for _ in range(8)]

    assert requests.get(f"{service.url}/metrics", timeout=10).status_code == 401
    scrape = requests.get(f"{service.url}/metrics", auth=AUTH, timeout=10)
    assert scrape.status_code == 200
    exported = exported_names(scrape.text)

    missing = {
        alert: sorted(set(METRIC_NAME.findall(expr)) - exported)
        for alert, expr in rule_expressions().items()
        if set(METRIC_NAME.findall(expr)) - exported
    }
    assert not missing, f"alert rules name metrics /metrics does not export: {missing}"
