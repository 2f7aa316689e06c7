"""What the Prometheus Operator makes of a ServiceMonitor or a PodMonitor, for the tests.

The relabelings below are the ones the operator's config generator writes for every monitor endpoint
(prometheus-operator pkg/prometheus/promcfg.go: generateServiceMonitorConfig and
generatePodMonitorConfig), followed by the monitor's own ``relabelings``. They decide the target
labels, and with ``honor_labels: false`` (the default) a label the server writes under one of those
names is stored as ``exported_<name>``: the operator's ``endpoint`` label (the port's name) did that
to the server's request metrics once. The guard test derives the forbidden names from here, and the
end-to-end test scrapes the real servers through the same relabelings.

Modelled: the port filter, the running-pod filter, the fixed target labels (namespace, service, pod,
container, node, job, endpoint), targetLabels, podTargetLabels, jobLabel, and the monitor's
relabelings and metricRelabelings. Not modelled, since the chart uses none of them: label selectors
and namespace selectors (the test lists its targets itself), the deprecated targetPort, scrape
classes, sharding, TLS and authentication. Kubernetes service discovery (role endpoints) is replaced
by static targets that carry the ``__meta_kubernetes_*`` labels it would give them
(:func:`endpoints_meta`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Prometheus itself: `job` from the job name (unless relabeled) and `instance` from the address.
PROMETHEUS_TARGET_LABELS = frozenset({"job", "instance"})

_RUNNING = {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"}
_CRD_KEYS = {
    "sourceLabels": "source_labels",
    "separator": "separator",
    "targetLabel": "target_label",
    "regex": "regex",
    "modulus": "modulus",
    "replacement": "replacement",
    "action": "action",
}


def sanitize(name: str) -> str:
    """A Kubernetes label name as a Prometheus label name (what the operator and discovery do)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _copy(meta_prefix: str, label: str, target: str | None = None) -> dict:
    return {
        "source_labels": [meta_prefix + sanitize(label)],
        "target_label": target or sanitize(label),
        "regex": "(.+)",
        "replacement": "${1}",
    }


def crd_relabelings(relabelings: Sequence[dict]) -> list[dict]:
    """A monitor's ``relabelings``/``metricRelabelings`` (CRD field names) as Prometheus relabel_configs.
    An unknown field fails here rather than being dropped silently."""
    out = []
    for r in relabelings:
        unknown = set(r) - set(_CRD_KEYS)
        assert not unknown, f"relabeling fields this model does not know: {unknown}"
        c = {_CRD_KEYS[k]: v for k, v in r.items()}
        if "action" in c:
            c["action"] = c["action"].lower()
        out.append(c)
    return out


def servicemonitor_relabel_configs(monitor: dict, index: int = 0) -> list[dict]:
    """relabel_configs of the scrape job for ``monitor``'s endpoint ``index`` (role endpoints)."""
    spec = monitor["spec"]
    ep = spec["endpoints"][index]
    port = ep["port"]
    address_target = [
        "__meta_kubernetes_endpoint_address_target_kind",
        "__meta_kubernetes_endpoint_address_target_name",
    ]
    out: list[dict] = [
        {"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": port},
        {
            "source_labels": address_target,
            "separator": ";",
            "regex": "Node;(.*)",
            "replacement": "${1}",
            "target_label": "node",
        },
        {
            "source_labels": address_target,
            "separator": ";",
            "regex": "Pod;(.*)",
            "replacement": "${1}",
            "target_label": "pod",
        },
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
    ]
    if ep.get("filterRunning", True):
        out.append(_RUNNING)
    out += [_copy("__meta_kubernetes_service_label_", label) for label in spec.get("targetLabels", [])]
    out += [_copy("__meta_kubernetes_pod_label_", label) for label in spec.get("podTargetLabels", [])]
    out.append(
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"}
    )
    if spec.get("jobLabel"):
        out.append(_copy("__meta_kubernetes_service_label_", spec["jobLabel"], target="job"))
    out.append({"target_label": "endpoint", "replacement": port})
    return out + crd_relabelings(ep.get("relabelings", []))


def podmonitor_relabel_configs(monitor: dict, index: int = 0) -> list[dict]:
    """relabel_configs of the scrape job for ``monitor``'s podMetricsEndpoint ``index`` (role pod)."""
    spec = monitor["spec"]
    ep = spec["podMetricsEndpoints"][index]
    port = ep["port"]
    meta = monitor["metadata"]
    out: list[dict] = [_RUNNING] if ep.get("filterRunning", True) else []
    out += [
        {"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": port},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]
    out += [_copy("__meta_kubernetes_pod_label_", label) for label in spec.get("podTargetLabels", [])]
    out.append({"target_label": "job", "replacement": f"{meta.get('namespace', 'default')}/{meta['name']}"})
    if spec.get("jobLabel"):
        out.append(_copy("__meta_kubernetes_pod_label_", spec["jobLabel"], target="job"))
    out.append({"target_label": "endpoint", "replacement": port})
    return out + crd_relabelings(ep.get("relabelings", []))


def target_labels(relabel_configs: Sequence[dict]) -> set[str]:
    """Every label a target scraped with these relabel_configs can carry (internal ``__`` ones aside)."""
    labels = set(PROMETHEUS_TARGET_LABELS)
    for r in relabel_configs:
        action = r.get("action", "replace")
        # labelmap and friends name their targets at run time: this list could not be complete.
        assert action in {"replace", "keep", "drop"}, (
            f"cannot tell the target labels of a {action} relabeling"
        )
        if action == "replace" and not r["target_label"].startswith("__"):
            labels.add(r["target_label"])
    return labels


def endpoints_meta(
    namespace: str, service: dict, pod_name: str, pod_template: dict, port: str
) -> dict[str, str]:
    """The ``__meta_kubernetes_*`` labels role endpoints gives the target of one running pod behind
    ``service`` (a Service manifest) for its port named ``port``; ``pod_template`` is the Deployment's."""
    service_port = next(p for p in service["spec"]["ports"] if p.get("name") == port)
    target_port = service_port.get("targetPort", service_port["port"])
    container, container_port = next(
        (c, p)
        for c in pod_template["spec"]["containers"]
        for p in c.get("ports", [])
        if target_port in (p.get("name"), p["containerPort"])
    )
    labels = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_service_name": service["metadata"]["name"],
        "__meta_kubernetes_endpoint_port_name": port,
        "__meta_kubernetes_endpoint_address_target_kind": "Pod",
        "__meta_kubernetes_endpoint_address_target_name": pod_name,
        "__meta_kubernetes_pod_name": pod_name,
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_container_name": container["name"],
        "__meta_kubernetes_pod_container_port_name": container_port.get("name", ""),
    }
    for key, value in service["metadata"].get("labels", {}).items():
        labels["__meta_kubernetes_service_label_" + sanitize(key)] = value
    for key, value in pod_template["metadata"].get("labels", {}).items():
        labels["__meta_kubernetes_pod_label_" + sanitize(key)] = value
    return labels


def servicemonitor_scrape_config(
    monitor: dict, targets: Sequence[tuple[str, dict[str, str]]], index: int = 0
) -> dict:
    """The scrape job the operator generates for ``monitor``'s endpoint ``index``, with static
    ``(address, endpoints_meta(...))`` targets in place of Kubernetes discovery. The scrape interval
    is left to the caller's global one (the tests scrape every second, not every 15 s)."""
    ep = monitor["spec"]["endpoints"][index]
    meta = monitor["metadata"]
    config = {
        "job_name": f"serviceMonitor/{meta.get('namespace', 'default')}/{meta['name']}/{index}",
        "honor_labels": ep.get("honorLabels", False),
        "metrics_path": ep.get("path", "/metrics"),
        "static_configs": [{"targets": [address], "labels": labels} for address, labels in targets],
        "relabel_configs": servicemonitor_relabel_configs(monitor, index),
    }
    if ep.get("metricRelabelings"):
        config["metric_relabel_configs"] = crd_relabelings(ep["metricRelabelings"])
    return config
