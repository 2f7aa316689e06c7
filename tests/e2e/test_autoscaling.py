"""The chart's CPU HorizontalPodAutoscaler with the real metrics-server (`make e2e` installs it).

From one replica, load from a client pod raises the pods' CPU use far above the target, and the HPA
scales the Deployment to two; once the load stops it scales back to one. The chart's `autoscaling.behavior`
keeps the windows short (no stabilization, one step per 15 s, metrics-server's resolution), so the test
takes a few minutes instead of the default five-minute scale-down window. The client counts its
requests: none may fail while a pod joins.
"""

from __future__ import annotations

from typing import Any

from support.cluster import (
    Image,
    condition,
    helm_install,
    kubectl_json,
    pods,
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
