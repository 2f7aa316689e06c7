"""Every install scenario the chart ships (charts/model-server/ci/ and examples/) on a real cluster: each
either installs and becomes Ready in a test of this suite, or needs a system outside this cluster and is
named, with the reason, in docs/development/cluster.md and the chart's README.

The scenarios with nothing outside the cluster are installed here as they are, with the locally built
image and a small CPU request (the cluster's two cores are shared by the parallel tests): Ready without
a restart, and `helm test` (one prediction over HTTP and one over gRPC through the Service) passes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.cluster import (
    CHART,
    Image,
    condition,
    helm_install,
    helm_test,
    kubectl_json,
    pods,
    release_selector,
    restarts,
    wait_until,
)
from support.paths import ROOT

RELEASE = "scenario"
# Installed by this module.
HERE = ("ci/minimal-values.yaml", "examples/grpc-ingress-values.yaml", "examples/keda-metrics-values.yaml")
# Installed by a test of its own, with the external part replaced by one in the cluster.
ELSEWHERE = {
    "ci/url-hpa-pdb-netpol-values.yaml": "test_url_scenario.py",
    "examples/pvc-values.yaml": "test_pvc_source.py",
    "examples/bucket-values.yaml": "test_bucket_source.py",
    "ci/canary-values.yaml": "test_canary.py",
}
# Needs a system this cluster does not have: named in the docs with the reason.
EXTERNAL = (
    "ci/monitoring-values.yaml",
    "examples/custom-metric-hpa-values.yaml",
    "examples/oci-values.yaml",
    "examples/production-values.yaml",
)
DOCS = (ROOT / "docs" / "development" / "cluster.md", CHART / "README.md")


def scenario_files() -> set[str]:
    return {str(p.relative_to(CHART)) for d in ("ci", "examples") for p in (CHART / d).glob("*.yaml")}


def test_every_scenario_is_installed_by_a_test_or_named_as_needing_an_external_system() -> None:
    assert sorted(scenario_files()) == sorted((*HERE, *ELSEWHERE, *EXTERNAL))
    for test in ELSEWHERE.values():
        assert (Path(__file__).parent / test).is_file(), test
    for doc in DOCS:
        text = doc.read_text()
        missing = [f for f in EXTERNAL if f"`{f}`" not in text]
        assert not missing, f"{doc.relative_to(ROOT)} does not name {missing} as needing an external system"


@pytest.mark.parametrize("scenario", HERE)
def test_scenario_installs_becomes_ready_and_passes_helm_test(
    namespace: str, server_image: Image, scenario: str
) -> None:
    values = yaml.safe_load((CHART / scenario).read_text())
    values.update(server_image.values())
    values["resources"] = {"requests": {"cpu": "50m"}}
    helm_install(RELEASE, namespace, values)

    replicas = pods(namespace, release_selector(RELEASE))
    autoscaling = values.get("autoscaling", {})
    expected = autoscaling["minReplicas"] if autoscaling.get("enabled") else values.get("replicaCount", 1)
    if len(replicas) < expected:
        # The HPA raises the Deployment to minReplicas at its first sync.
        def all_ready() -> bool:
            found = pods(namespace, release_selector(RELEASE))
            return len([p for p in found if condition(p, "Ready") == "True"]) == expected

        wait_until(all_ready, 120, f"{expected} ready replicas")
        replicas = pods(namespace, release_selector(RELEASE))
    assert len(replicas) == expected, [p["metadata"]["name"] for p in replicas]
    for pod in replicas:
        assert condition(pod, "Ready") == "True"
        assert restarts(pod) == 0

    kinds = {o["kind"] for o in kubectl_json("get", "ingress,hpa,networkpolicy", "-n", namespace)["items"]}
    if values.get("ingress", {}).get("enabled"):
        assert "Ingress" in kinds
    if values.get("networkPolicy", {}).get("enabled"):
        assert "NetworkPolicy" in kinds
    if autoscaling.get("enabled"):
        assert "HorizontalPodAutoscaler" in kinds
    if any(m["type"] == "External" for m in autoscaling.get("metrics", [])):
        # No external metrics API here (KEDA, prometheus-adapter): the pods serve, and the HPA says why it
        # cannot scale on that metric.
        def inactive() -> str | None:
            [hpa] = kubectl_json("get", "hpa", "-n", namespace)["items"]
            active = [c for c in hpa["status"].get("conditions", []) if c["type"] == "ScalingActive"]
            return active[0]["reason"] if active and active[0]["status"] == "False" else None

        assert wait_until(inactive, 90, "the HPA to report its external metric") == "FailedGetExternalMetric"

    out = helm_test(RELEASE, namespace)
    name, version = values.get("model", {}).get("name", "iris-classifier"), "1.0.0"
    assert f"OK: {name} {version} predicted" in out, out
    assert f"OK: {name} {version} answered over gRPC" in out, out
