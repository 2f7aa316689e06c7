"""No metric name appears in a dashboard, a rule or the adapter rule that nothing exports.

Allowed: the server's METRIC_NAMES, series recorded by our own rules, and an explicit list of what
kube-state-metrics, cAdvisor (the kubelet) and Prometheus itself export.
"""

from __future__ import annotations

import re

import pytest
import yaml
from model_server.metrics import METRIC_NAMES
from support.monitoring import (
    ADAPTER_VALUES,
    alerts,
    dashboard_queries,
    metric_names,
    recording_rules,
    variable_queries,
)
from support.paths import ROOT

# Exported by the cluster's exporters, not by the server: each is used on purpose (see the dashboards).
KUBE_STATE_METRICS = {
    "kube_pod_labels",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_resource_requests",
    "kube_pod_container_resource_limits",
    "kube_horizontalpodautoscaler_labels",
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
    "kube_horizontalpodautoscaler_spec_min_replicas",
    "kube_horizontalpodautoscaler_spec_max_replicas",
}
CADVISOR = {
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "container_cpu_cfs_throttled_periods_total",
    "container_cpu_cfs_periods_total",
}
PROMETHEUS = {"up", "ALERTS"}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (code) (rate(model_server_requests_total{code=~"5.."}[$__rate_interval]))',
            {"model_server_requests_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / on (pod) group_left (model) b:c:d",
            {"a_bucket", "b:c:d"},
        ),
        (
            'label_replace(kube_pod_labels{x!=""}, "model", "$1", "label_x", "(.*)") > 1e5 unless up',
            {"kube_pod_labels", "up"},
        ),
        ('sum by (<<.GroupBy>>) (rate(<<.Series>>{<<.LabelMatchers>>,code=~"2.."}[2m]))', set()),
    ],
)
def test_the_name_extractor_finds_metric_names_only(expr, names):
    assert metric_names(expr) == names


def _allowed() -> set[str]:
    return (
        set(METRIC_NAMES)
        | {r["record"] for r in recording_rules()}
        | KUBE_STATE_METRICS
        | CADVISOR
        | PROMETHEUS
    )


def test_dashboard_queries_use_only_exported_or_recorded_metrics():
    used: dict[str, set[str]] = {}
    for uid, title, expr in dashboard_queries():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(f"{uid}: {title}")
    for uid, var, query in variable_queries():
        metric = re.fullmatch(r"label_values\((\w+)(\{.*\})?,\s*\w+\)", query)
        assert metric, f"{uid} variable {var}: unexpected query {query}"
        used.setdefault(metric.group(1), set()).add(f"{uid}: ${var}")
    unknown = {n: sorted(w) for n, w in used.items() if n not in _allowed()}
    assert not unknown, f"not exported by anything: {unknown}"
    # the check sees the server's metrics (it would pass vacuously on an empty extraction otherwise)
    assert {
        "model_server_requests_total",
        "model_server_feature_drift_psi",
        "model_server_model_info",
        "model_server_request_duration_seconds_bucket",
    } <= set(used)


def test_rule_expressions_use_only_exported_or_recorded_metrics():
    used = {n for r in recording_rules() + alerts() for n in metric_names(r["expr"])}
    assert not used - _allowed(), f"not exported by anything: {used - _allowed()}"
    assert {"model_server_requests_total", "model_server_model_ready"} <= used


def test_every_recorded_series_is_used_by_a_dashboard_or_an_alert():
    used = {n for r in recording_rules() + alerts() for n in metric_names(r["expr"])}
    used |= {n for _, _, expr in dashboard_queries() for n in metric_names(expr)}
    unused = {r["record"] for r in recording_rules()} - used
    assert not unused, f"recorded but never read: {unused}"


def test_adapter_rule_reads_an_exported_counter():
    rule = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"][0]
    assert metric_names(rule["seriesQuery"]) == {"model_server_requests_total"} <= METRIC_NAMES
    assert re.fullmatch(rule["name"]["matches"], "model_server_requests_total")
    assert metric_names(rule["metricsQuery"]) == set()  # only <<.Series>>: the name comes from seriesQuery


def test_the_docs_metrics_table_lists_exactly_the_exported_metrics():
    """docs/operations/monitoring.md describes every series the server exports, and nothing else."""
    text = (ROOT / "docs" / "operations" / "monitoring.md").read_text()
    table = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for name, kind in re.findall(r"^\| `(model_server_\w+)` \| (\w+) \|", table, flags=re.MULTILINE):
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        documented |= {name + s for s in suffixes}
    assert documented == set(METRIC_NAMES)
