"""The chart's CPU HorizontalPodAutoscaler with the real metrics-server (`make e2e` installs it).

From one replica, load from a client pod raises the pods' CPU use far above the target, and the HPA
scales the Deployment to two; once the load stops it scales back to one. The chart's `autoscaling.behavior`
keeps the windows short (no stabilization, one step per 15 s, metrics-server's resolution), so the test
takes a few minutes instead of the default five-minute scale-down window. The client counts its
requests: none may fail while a pod joins.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.cluster import (
    Image,
    condition,
    helm_install,
    kubectl_json,
    pods,
    quantity,
    release_selector,
    service,
    service_url,
    start_client,
    stop_client,
    wait_until,
)

RELEASE = "iris"
STEP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max"}


def hpa(namespace: str, name: str) -> dict[str, Any]:
    return kubectl_json("get", "hpa", "-n", namespace, name)  # type: ignore[no-any-return]


def deployment(namespace: str, name: str) -> dict[str, Any]:
    return kubectl_json("get", "deployment", "-n", namespace, name)  # type: ignore[no-any-return]


def utilization(h: dict[str, Any]) -> int | None:
    for m in h["status"].get("currentMetrics") or []:
        if m.get("type") == "Resource" and m["resource"]["name"] == "cpu":
            value = m["resource"]["current"].get("averageUtilization")
            return None if value is None else int(value)
    return None


def live_pods(namespace: str) -> list[dict[str, Any]]:
    """The release's pods that are not terminating."""
    found = pods(namespace, release_selector(RELEASE))
    return [p for p in found if not p["metadata"].get("deletionTimestamp")]


def test_cpu_load_scales_from_one_to_two_replicas_and_back(namespace: str, server_image: Image) -> None:
    values = {
        **server_image.values(),
        # The utilisation is measured against the request: 100m makes a busy server several times over
        # the target on any machine.
        "resources": {"requests": {"cpu": "100m"}},
        "probes": {"startup": {"periodSeconds": 1}, "readiness": {"periodSeconds": 1}},
        "autoscaling": {
            "enabled": True,
            "minReplicas": 1,
            "maxReplicas": 2,
            "targetCPUUtilizationPercentage": 50,
            "behavior": {
                "scaleUp": {**STEP, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]},
                "scaleDown": {**STEP, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
            },
        },
    }
    helm_install(RELEASE, namespace, values)
    name = service(RELEASE, namespace)["metadata"]["name"]  # the HPA and the Deployment are named alike

    # metrics-server reports the pod's CPU: the HPA can compute (idle, one replica).
    def measuring() -> dict[str, Any] | None:
        h = hpa(namespace, name)
        return h if condition(h, "ScalingActive") == "True" and utilization(h) is not None else None

    idle = wait_until(measuring, 120, "the HPA to get the pod's CPU from metrics-server")
    print(f"idle: {idle['status']}")
    assert idle["spec"]["minReplicas"] == 1
    assert idle["status"]["currentReplicas"] == 1, idle["status"]
    assert deployment(namespace, name)["spec"]["replicas"] == 1

    client = start_client(
        namespace,
        server_image,
        service_url(RELEASE, namespace),
        "iris-classifier",
        "--connection",
        "keep-alive",
        "--concurrency",
        "2",
        name="load",
    )

    def scaled_up() -> dict[str, Any] | None:
        h, d = hpa(namespace, name), deployment(namespace, name)
        # The HPA's own status catches up with the Deployment at its next sync.
        ok = (
            h["status"].get("desiredReplicas", 0) == 2
            and h["status"].get("currentReplicas", 0) == 2
            and d["status"].get("readyReplicas", 0) == 2
        )
        return h if ok else None

    up = wait_until(scaled_up, 150, "the HPA to scale the Deployment to two ready replicas", interval=3)
    print(f"under load: {up['status']}")
    assert utilization(up) is not None and utilization(up) > 50, up["status"]
    result = stop_client(namespace, client)
    print(f"load: {result}")
    assert result["failed"] == 0, result
    assert result["ok"] > 0, result

    def scaled_down() -> dict[str, Any] | None:
        h, d = hpa(namespace, name), deployment(namespace, name)
        live = live_pods(namespace)
        ok = (
            h["status"].get("currentReplicas") == 1
            and h["status"].get("desiredReplicas") == 1
            and d["spec"]["replicas"] == 1
            and d["status"].get("readyReplicas") == 1
            and len(live) == 1
        )
        return h if ok else None

    down = wait_until(scaled_down, 150, "the HPA to scale the Deployment back to one replica", interval=3)
    print(f"after the load: {down['status']}")
    [pod] = live_pods(namespace)
    assert condition(pod, "Ready") == "True"


# The adapter's 2-minute rate makes each way take a minute or two, plus the first scrape of the pod.
@pytest.mark.timeout(480)
def test_requests_per_second_scale_out_to_what_the_target_implies_and_back(
    namespace: str, server_image: Image
) -> None:
    """The chart's requests-per-second metric, served by the real prometheus-adapter from the cluster
    Prometheus (`make e2e` installs both): a steady 30 requests per second against a target of 10 per
    pod takes the Deployment from one replica to three (not to its maximum of four), and back to one
    when the load stops. The adapter's rule rates over 2 minutes, so each way takes a minute or two."""
    rps, per_pod, implied = 30, 10, 3
    values = {
        **server_image.values(),
        "resources": {"requests": {"cpu": "50m"}},
        "probes": {"startup": {"periodSeconds": 1}, "readiness": {"periodSeconds": 1}},
        "monitoring": {
            "serviceMonitor": {"enabled": True, "interval": "5s", "scrapeTimeout": "4s"},
            "releaseLabel": "kube-prometheus-stack",
        },
        "autoscaling": {
            "enabled": True,
            "minReplicas": 1,
            "maxReplicas": implied + 1,
            "targetCPUUtilizationPercentage": None,
            "requestsPerSecond": {"enabled": True, "averageValue": str(per_pod)},
            "behavior": {
                "scaleUp": {**STEP, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 15}]},
                "scaleDown": {**STEP, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
            },
        },
    }
    helm_install(RELEASE, namespace, values)
    name = service(RELEASE, namespace)["metadata"]["name"]

    def measuring() -> dict[str, Any] | None:
        h = hpa(namespace, name)
        return h if condition(h, "ScalingActive") == "True" and per_pod_rate(h) is not None else None

    # The ServiceMonitor reaches Prometheus, then the adapter's next relist: a minute or two.
    idle = wait_until(
        measuring, 240, "the HPA to get model_server_requests_per_second from the adapter", interval=3
    )
    print(f"idle: {idle['status']}")
    assert idle["status"]["currentReplicas"] == 1, idle["status"]

    client = start_client(
        namespace,
        server_image,
        service_url(RELEASE, namespace),
        "iris-classifier",
        # A new connection per request, so that kube-proxy spreads the load over every ready pod.
        "--connection",
        "close",
        "--concurrency",
        "3",
        "--rate",
        str(rps),
        name="load",
    )

    def settled_out() -> dict[str, Any] | None:
        h, d = hpa(namespace, name), deployment(namespace, name)
        rate = per_pod_rate(h)
        ok = (
            h["status"].get("currentReplicas") == implied
            and h["status"].get("desiredReplicas") == implied
            and d["status"].get("readyReplicas") == implied
            # The metric carries the load (its 2-minute rate still ramps up on the newest pods).
            and rate is not None
            and rate * implied > 0.5 * rps
        )
        return h if ok else None

    out = wait_until(
        settled_out, 360, f"the HPA to settle at {implied} replicas under {rps} req/s", interval=5
    )
    print(f"under load: {out['status']}")
    assert deployment(namespace, name)["spec"]["replicas"] == implied
    result = stop_client(namespace, client)
    print(f"load: {result}")
    assert result["failed"] == 0, result

    def back_in() -> dict[str, Any] | None:
        h, d = hpa(namespace, name), deployment(namespace, name)
        ok = (
            h["status"].get("currentReplicas") == 1
            and d["spec"]["replicas"] == 1
            and d["status"].get("readyReplicas") == 1
            and len(live_pods(namespace)) == 1
        )
        return h if ok else None

    down = wait_until(back_in, 300, "the HPA to scale back to one replica", interval=5)
    print(f"after the load: {down['status']}")


def per_pod_rate(h: dict[str, Any]) -> float | None:
    """The HPA's current average of model_server_requests_per_second per pod."""
    for m in h["status"].get("currentMetrics") or []:
        if m.get("type") == "Pods" and m["pods"]["metric"]["name"] == "model_server_requests_per_second":
            return quantity(m["pods"]["current"]["averageValue"])
    return None
