"""The Grafana dashboard and Prometheus scrape config in config/ match what Jury exports.

Every query must name metrics (and group by labels) that ``app/core/metrics.py`` declares, so a
renamed metric breaks this test instead of leaving an empty panel; and docker-compose must
provision what is shipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import Counter, Gauge, Histogram

from app.core import metrics

CONFIG = Path(__file__).resolve().parents[2] / "config"
DASHBOARD = CONFIG / "grafana" / "dashboards" / "jury.json"
METRIC_NAME = re.compile(r"\b(jury_[a-z0-9_]+)\b")
GROUPING = re.compile(r"\bby \(([^)]*)\)")
# What Prometheus adds to a histogram's or counter's samples.
SUFFIXES = {Histogram: ("_bucket", "_sum", "_count"), Counter: ("_total",), Gauge: ("",)}
# Labels every series of a histogram's buckets carries besides the declared ones.
IMPLICIT_LABELS = {"le"}


def exported() -> dict[str, set[str]]:
    """Return every sample name Jury exports, with the labels of its metric."""
    names: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        kind = next((k for k in SUFFIXES if isinstance(collector, k)), None)
        if kind is None:
            continue
        base = collector._name  # the declared name, without the counter's _total
        labels = set(collector._labelnames)
        for suffix in SUFFIXES[kind]:
            names[base.removesuffix("_total") + suffix if kind is Counter else base + suffix] = (
                labels
            )
    return names


def queries() -> list[tuple[str, str]]:
    """Return (panel title, expression) for every query of the dashboard."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_every_query_names_only_metrics_jury_exports() -> None:
    names = exported()
    found = queries()
    assert len(found) >= 10
    for title, expr in found:
        used = METRIC_NAME.findall(expr)
        assert used, f"{title}: {expr} names no Jury metric"
        for name in used:
            assert name in names, f"{title}: {name} is not exported by app/core/metrics.py"
        labels = set.union(*(names[name] for name in used)) | IMPLICIT_LABELS
        for grouping in GROUPING.findall(expr):
            for label in filter(None, (part.strip() for part in grouping.split(","))):
                assert label in labels, f"{title}: no metric in {used} has the label {label!r}"


def test_the_dashboard_covers_what_an_operator_watches() -> None:
    used = {name for _, expr in queries() for name in METRIC_NAME.findall(expr)}
    for metric in (
        "jury_verdict_latency_seconds_bucket",
        "jury_juror_latency_seconds_bucket",
        "jury_juror_calls_total",
        "jury_quorum_failures_total",
        "jury_judge_fallbacks_total",
        "jury_shifts_total",
        "jury_tokens_total",
        "jury_cost_usd_total",
        "jury_redis_failures_total",
    ):
        assert metric in used, f"no panel shows {metric}"


def test_the_exported_names_are_read_from_the_registry_itself() -> None:
    # The check above is only as good as exported(): hold it to real /metrics output.
    from prometheus_client import REGISTRY, generate_latest

    metrics.QUORUM_FAILURES.labels("dashboard-test")
    text = generate_latest(REGISTRY).decode()
    assert 'jury_quorum_failures_total{panel="dashboard-test"}' in text
    assert "jury_quorum_failures_total" in exported()
    assert "jury_verdict_latency_seconds_bucket" in exported()


def test_compose_provisions_prometheus_and_grafana_with_the_dashboard() -> None:
    compose = yaml.safe_load((CONFIG / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in services["prometheus"]["volumes"]
    grafana = services["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana

    scrape = yaml.safe_load((CONFIG / "prometheus.yml").read_text())
    [job] = scrape["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    [discovery] = job["dns_sd_configs"]
    assert discovery["names"] == ["api"]
    assert discovery["port"] == 8000  # the port `jury serve` listens on in compose

    provisioning = CONFIG / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    [prometheus] = source["datasources"]
    assert prometheus["url"] == "http://prometheus:9090"
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    assert uids == {prometheus["uid"]}
    provider = yaml.safe_load((provisioning / "dashboards" / "jury.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
