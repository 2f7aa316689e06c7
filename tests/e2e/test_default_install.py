"""The chart with no values but the image, as a new user installs it, on a real cluster.

In a namespace enforcing the `restricted` Pod Security Standard: the pod is admitted and becomes Ready
without a restart, a client pod's predictions through the Service are answered in every protocol (the
named JSON, KServe V1 and Open Inference Protocol V2 over HTTP, and the Open Inference Protocol over
gRPC on the Service's gRPC port), and `helm test` passes over HTTP and gRPC. A release asking for a model
version the bundle does not carry stays live and never ready, and says why; with the kubelet's native
gRPC readiness probe it says so over grpc.health.v1 and becomes Ready once the version matches.
"""

from __future__ import annotations

from typing import Any

from support.cluster import (
    Image,
    condition,
    delete_and_watch,
    helm_install,
    helm_test,
    helm_uninstall,
    http,
    kubectl,
    kubectl_json,
    pods,
    port_forward,
    ready_endpoints,
    release_selector,
    restarts,
    run_client,
    running_pod,
    service_grpc_target,
    service_url,
    unhealthy_events,
    wait_until,
)

RELEASE = "iris"


def test_default_install_is_ready_predicts_in_every_protocol_and_passes_helm_test(
    namespace: str, server_image: Image
) -> None:
    helm_install(RELEASE, namespace, server_image.values())

    [pod] = pods(namespace, release_selector(RELEASE))
    assert condition(pod, "Ready") == "True"
    assert restarts(pod) == 0
    container = pod["spec"]["containers"][0]
    assert container["image"] == str(server_image)
    # What `restricted` demands is what the chart asks for: the pod was admitted with it.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}

    result = run_client(
        namespace,
        server_image,
        service_url(RELEASE, namespace),
        "iris-classifier",
        "--protocols",
        "named,v1,v2,grpc",
        "--grpc-target",
        service_grpc_target(RELEASE, namespace),
        "--requests",
        "40",
        "--concurrency",
        "4",
    )
    assert result["failed"] == 0, result
    assert result["protocols"] == {p: {"ok": 10} for p in ("named", "v1", "v2", "grpc")}, result
    # The named, V2 and gRPC answers name the version (V1's carry predictions only).
    assert result["versions"] == {"1.0.0": 30}, result

    out = helm_test(RELEASE, namespace)
    assert "Phase:          Succeeded" in out, out
    assert "OK: iris-classifier 1.0.0 predicted" in out, out
    assert "OK: iris-classifier 1.0.0 answered over gRPC" in out, out

    helm_uninstall(RELEASE, namespace)
    left = kubectl_json(
        "get", "deployments,services,serviceaccounts", "-n", namespace, "-l", release_selector(RELEASE)
    )["items"]
    assert left == [], [f"{o['kind']}/{o['metadata']['name']}" for o in left]
    # Its pods go through their termination (preStop, drain) after the Deployment is gone.
    assert all(p["metadata"].get("deletionTimestamp") for p in pods(namespace, release_selector(RELEASE)))


def test_a_version_the_bundle_does_not_carry_stays_live_and_not_ready(
    namespace: str, server_image: Image
) -> None:
    """model.version reaches the server as MODEL_VERSION; the image's bundle is 1.0.0. The pod must stay
    out of the Service, say why (its log, its readiness answer, the probe events), and never be restarted
    for it."""
    helm_install(RELEASE, namespace, {**server_image.values(), "model": {"version": "2.0.0"}}, wait=False)
    name = running_pod(namespace, release_selector(RELEASE))["metadata"]["name"]

    def probe_answered_503() -> list[dict[str, Any]]:
        events = kubectl_json(
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            f"involvedObject.name={name},reason=Unhealthy",
        )["items"]
        return [e for e in events if "statuscode: 503" in e["message"]]

    wait_until(probe_answered_503, 60, "the kubelet's probe to get the server's 503")

    def logged_reason() -> str | None:
        log = kubectl("logs", "-n", namespace, name)
        return log if "2.0.0" in log else None

    log = wait_until(logged_reason, 30, "the server to log why it is not ready")
    assert "MODEL_VERSION expects '2.0.0'" in log, log

    with port_forward(namespace, f"pod/{name}", 8000) as base:
        status, body = http("GET", f"{base}/readyz")
        assert status == 503 and "'2.0.0'" in str(body) and "'1.0.0'" in str(body), (status, body)
        assert http("GET", f"{base}/healthz")[0] == 200

    pod = kubectl_json("get", "pod", "-n", namespace, name)
    assert condition(pod, "Ready") == "False"
    assert restarts(pod) == 0
    assert ready_endpoints(RELEASE, namespace) == [], "a pod that is not ready must get no traffic"


def test_a_deleted_pod_drains_and_its_server_exits_0(namespace: str, server_image: Image) -> None:
    """On deletion the kubelet runs the preStop sleep, then sends SIGTERM: the server must finish and exit
    0 within the grace period that is left (exit 137 would mean the kubelet had to kill it)."""
    helm_install(RELEASE, namespace, server_image.values())
    [pod] = pods(namespace, release_selector(RELEASE))
    states = delete_and_watch(namespace, pod["metadata"]["name"])
    last = [
        s["state"]["terminated"]
        for obj in states
        for s in obj["status"].get("containerStatuses", [])
        if "terminated" in s.get("state", {})
    ]
    assert last, "the pod was gone before its container's end was reported"
    assert last[-1]["exitCode"] == 0, last[-1]
    assert last[-1]["reason"] == "Completed", last[-1]


def test_native_grpc_readiness_probe_keeps_a_wrong_version_out_and_admits_the_right_one(
    namespace: str, server_image: Image
) -> None:
    """`probes.readiness.grpc`: the kubelet's own gRPC client asks grpc.health.v1.Health/Check on the gRPC
    port. The startup probe is pointed at /healthz here so that readiness (which the kubelet runs only
    after startup passed) is judged by the gRPC probe alone while the version is wrong."""
    values = {
        **server_image.values(),
        "probes": {"startup": {"path": "/healthz"}, "readiness": {"grpc": True}},
        "resources": {"requests": {"cpu": "50m"}},
    }
    helm_install(RELEASE, namespace, {**values, "model": {"version": "2.0.0"}}, wait=False)
    pod = running_pod(namespace, release_selector(RELEASE))
    assert pod["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] == 8081
    name = pod["metadata"]["name"]
    messages = wait_until(
        lambda: [m for m in unhealthy_events(namespace, name) if "NOT_SERVING" in m],
        90,
        "the kubelet's gRPC readiness probe to get NOT_SERVING",
    )
    assert messages[0].startswith("Readiness probe failed"), messages
    pod = kubectl_json("get", "pod", "-n", namespace, name)
    assert condition(pod, "Ready") == "False"
    assert restarts(pod) == 0
    assert ready_endpoints(RELEASE, namespace) == []

    helm_install(RELEASE, namespace, {**values, "model": {"version": "1.0.0"}}, upgrade=True)
    ready = [p for p in pods(namespace, release_selector(RELEASE)) if condition(p, "Ready") == "True"]
    assert len(ready) == 1, [p["metadata"]["name"] for p in ready]
    assert ready[0]["metadata"]["name"] != name
    assert ready[0]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] == 8081
    assert restarts(ready[0]) == 0
    assert len(ready_endpoints(RELEASE, namespace)) == 1
    out = helm_test(RELEASE, namespace)
    assert "OK: iris-classifier 1.0.0 answered over gRPC" in out, out
