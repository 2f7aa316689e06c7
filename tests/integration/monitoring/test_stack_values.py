"""The kube-prometheus-stack and prometheus-adapter values agree with the chart and the rules."""

from __future__ import annotations

import json
import re

import yaml
from support.monitoring import ADAPTER_VALUES, DASHBOARDS, KPS_VALUES, helm_template, load_rules
from support.paths import CHART, PLATFORM_CHART, ROOT


def test_adapter_exposes_the_pods_metric_the_chart_hpa_asks_for():
    values = yaml.safe_load(ADAPTER_VALUES.read_text())
    rule = values["rules"]["custom"][0]
    assert rule["name"]["as"] == "model_server_requests_per_second"
    hpa = (ROOT / "charts" / "model-server" / "templates" / "hpa.yaml").read_text()
    assert "name: model_server_requests_per_second" in hpa
    overrides = rule["resources"]["overrides"]
    assert overrides == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    for template in ("<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"):
        assert template in rule["metricsQuery"]
    # only prediction endpoints: the same selector as the SLO rules
    sli = next(
        r
        for g in load_rules()["groups"]
        for r in g["rules"]
        if r.get("record") == "namespace_model:model_server_availability_errors:ratio_rate5m"
    )
    route = re.search(r'route=~"[^"]+"', rule["metricsQuery"]).group(0)
    assert route in sli["expr"]
    assert values["rules"]["default"] is False


def test_adapter_reaches_the_prometheus_that_kube_prometheus_stack_names():
    kps = yaml.safe_load(KPS_VALUES.read_text())
    url = yaml.safe_load(ADAPTER_VALUES.read_text())["prometheus"]["url"]
    assert url == f"http://{kps['fullnameOverride']}-prometheus.monitoring.svc"


def _ksm_label(resource_label: str) -> str:
    """kube-state-metrics' name for an allow-listed Kubernetes label (non-alphanumerics to _)."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", resource_label)


def test_kube_state_metrics_exports_the_labels_the_rules_join_on():
    allow = yaml.safe_load(KPS_VALUES.read_text())["kube-state-metrics"]["metricLabelsAllowlist"]
    exported = {}
    for entry in allow:
        resource, labels = re.fullmatch(r"(\w+)=\[(.*)\]", entry).groups()
        exported[resource] = {_ksm_label(lbl) for lbl in labels.split(",")}
    text = yaml.safe_dump(load_rules())
    used_pod = set(re.findall(r"label_model_server_io_\w+", text))
    assert used_pod, "the rules no longer join on kube-state-metrics labels: drop the allow-list"
    assert used_pod <= exported["pods"]
    assert "label_model_server_io_model" in exported["horizontalpodautoscalers"]
    # and the chart really puts those labels on the pods and the HPA
    rendered = {d["kind"]: d for d in helm_template(CHART / "ci" / "url-hpa-pdb-netpol-values.yaml")}
    pod_labels = rendered["Deployment"]["spec"]["template"]["metadata"]["labels"]
    hpa_labels = rendered["HorizontalPodAutoscaler"]["metadata"]["labels"]
    for labels in (pod_labels, hpa_labels):
        assert labels["model-server.io/model"] == "iris-classifier"
        assert labels["model-server.io/model-version"] == "1.0.0"


def test_the_charts_ship_exactly_the_generated_rules_dashboards_and_scrape_labels():
    platform = {d["kind"]: d for d in helm_template(chart=PLATFORM_CHART)}
    # the platform's PrometheusRule carries the generated rule groups unchanged
    assert platform["PrometheusRule"]["spec"]["groups"] == load_rules()["groups"]
    assert platform["PrometheusRule"]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # the dashboards ConfigMap is labelled for the sidecar kube-prometheus-stack.yaml configures, and
    # stays in its release namespace, the one the sidecar watches without a searchNamespace
    sidecar = yaml.safe_load(KPS_VALUES.read_text())["grafana"]["sidecar"]["dashboards"]
    configmap = platform["ConfigMap"]
    assert configmap["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
    assert configmap["metadata"]["annotations"][sidecar["folderAnnotation"]] == "model-server"
    assert "namespace" not in configmap["metadata"] and "searchNamespace" not in sidecar
    for path in DASHBOARDS:
        assert json.loads(configmap["data"][path.name]) == json.loads(path.read_text())
    # a model's release carries its ServiceMonitor and nothing platform-wide
    rendered = helm_template(CHART / "ci" / "monitoring-values.yaml")
    by_kind = {d["kind"]: d for d in rendered}
    assert "PrometheusRule" not in by_kind and "ConfigMap" not in by_kind
    # the ServiceMonitor turns the pod labels into the target labels every query aggregates by
    relabel = {
        r["targetLabel"]: r["sourceLabels"]
        for r in by_kind["ServiceMonitor"]["spec"]["endpoints"][0]["relabelings"]
    }
    assert relabel["model"] == ["__meta_kubernetes_pod_label_model_server_io_model"]
    assert relabel["model_version"] == ["__meta_kubernetes_pod_label_model_server_io_model_version"]
    assert by_kind["ServiceMonitor"]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def _receiver(route: dict, alert: dict[str, str]) -> str:
    """Alertmanager's routing for the equality matchers we use: first matching child wins (no `continue`)."""
    for child in route.get("routes", []):
        matchers = [re.fullmatch(r'(\w+)="([^"]*)"', m).groups() for m in child.get("matchers", [])]
        if all(alert.get(k) == v for k, v in matchers):
            return _receiver(child, alert) if child.get("routes") else child["receiver"]
    return route["receiver"]


def test_alerts_are_routed_by_environment():
    """dev pages nobody, staging opens tickets but never pages, prod pages on critical alerts."""
    route = yaml.safe_load(KPS_VALUES.read_text())["alertmanager"]["config"]["route"]
    envs = {
        d.name: yaml.safe_load((d / "env.yaml").read_text())["destination"]["namespace"]
        for d in sorted((ROOT / "environments").iterdir())
        if (d / "env.yaml").is_file()
    }
    assert set(envs) == {"dev", "staging", "prod"}
    expected = {"dev": ("null", "null"), "staging": ("ticket", "ticket"), "prod": ("page", "ticket")}
    for env, namespace in envs.items():
        got = tuple(
            _receiver(route, {"alertname": "ModelServerX", "namespace": namespace, "severity": s})
            for s in ("critical", "warning")
        )
        assert got == expected[env], f"{env} ({namespace}): critical/warning go to {got}"
