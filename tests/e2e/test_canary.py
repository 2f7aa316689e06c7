"""Canary releases for real: Argo Rollouts moves traffic to a new model version step by step, and the
chart's AnalysisTemplate asks the cluster's Prometheus about the new version's pods before each next
step.

Each test installs the release with charts/model-server/ci/canary-values.yaml (three replicas, steps 25%
and 50%; analyses every few seconds instead of every 30 s so the test fits its budget, the checks and
their bounds the chart's own), with 1.0.0 from the image, and two clients sending predictions with
probabilities through the Service without pause (so every check, confidence included, has data).
The values split traffic by an HTTPRoute too (rollout.canary.gatewayAPI, with the local cluster's
traffic router plugin): no Gateway runs here, so the clients still reach the pods by the release's
Service (replica ratio), and the tests read the weights the Rollout sets on the HTTPRoute.
Then `helm upgrade` to
- 2.0.0, the same model as a new version: every analysis passes, the HTTPRoute goes 75/25, 50/50 and
  back to 100/0 on the stable Service, now 2.0.0's pods; the Rollout is promoted to 100% and the
  clients see no failed request;
- 3.0.0, the same trees with their class labels rotated (tests/support/bundleserver.py `--drifted`): it
  loads, answers fast and confidently, and predicts another class for the same rows. Its predicted
  classes' PSI against the stable version's fails the first analysis; the Rollout aborts by itself, all
  traffic (the HTTPRoute's weight included) returns to 1.0.0, and the Rollout's status and an event
  name the failing metric. The answers clients got from 3.0.0 are bounded by the canary's share and
  the time to the first analysis: the test reports their count and checks their share.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from support.cluster import (
    CHART,
    Image,
    condition,
    helm_install,
    kubectl,
    kubectl_json,
    pods,
    port_forward,
    release_selector,
    serve_bundles,
    service_url,
    start_client,
    stop_client,
    wait_until,
)
from support.prometheus import PrometheusAPI

# An install, the first scrape of its new ServiceMonitor, and an upgrade through analyses every 10 s.
pytestmark = pytest.mark.timeout(480)

RELEASE = "iris"
MODEL = "iris-classifier"
VERSION_LABEL = "model-server.io/model-version"
SCRAPE_SECONDS = 5
# Paced, so that the two cores this suite shares are not saturated: the analysis judges the canary's
# latency, and a queue on the node would be the test's doing, not the version's. A kept-alive connection
# stays on the pod it opened (until that pod drains), so the canary's share of traffic comes mostly from
# the client that connects per request.
CLIENTS = {
    "keep-alive": ["--connection", "keep-alive", "--concurrency", "2", "--rate", "20", "--probabilities"],
    "close": ["--connection", "close", "--concurrency", "2", "--rate", "40", "--probabilities"],
}
# Seconds of traffic on the stable version before the upgrade, so the stable pods have a rate to compare
# the canary's with.
WARM_SECONDS = 15


def values(image: Image, **extra: Any) -> dict[str, Any]:
    """charts/model-server/ci/canary-values.yaml as it is, but for what a two-core node shared by the
    suite needs: small CPU requests, probes every second, scrapes every 5 s and analyses every 10 s."""
    scenario = yaml.safe_load((CHART / "ci" / "canary-values.yaml").read_text())
    assert scenario["rollout"]["canary"]["steps"] == [25, 50] and scenario["replicaCount"] == 3
    scenario["rollout"]["canary"]["analysis"] = {
        # Two or three scrapes before the first measurement; two measurements per step over 30 s.
        "initialDelay": "20s",
        "interval": "10s",
        "count": 2,
        "window": "30s",
    }
    scenario["monitoring"] = {
        "serviceMonitor": {"enabled": True, "interval": f"{SCRAPE_SECONDS}s", "scrapeTimeout": "4s"},
        "releaseLabel": "kube-prometheus-stack",
    }
    return {
        **scenario,
        **image.values(),
        "resources": {"requests": {"cpu": "50m"}},
        "probes": {
            "startup": {"periodSeconds": 1, "failureThreshold": 300},
            "readiness": {"periodSeconds": 1},
        },
        **extra,
    }


def url_source(archive: tuple[str, str, int]) -> dict[str, Any]:
    url, sha256, _ = archive
    return {"type": "url", "url": {"uri": url, "sha256": sha256}}


def rollout(namespace: str) -> dict[str, Any]:
    return kubectl_json("get", "rollout", "-n", namespace, f"{RELEASE}-model-server")  # type: ignore[no-any-return]


def analysis_runs(namespace: str) -> list[dict[str, Any]]:
    found = kubectl_json("get", "analysisruns", "-n", namespace)["items"]
    return sorted(found, key=lambda r: r["metadata"]["creationTimestamp"])


def pod_versions(namespace: str, *, ready: bool = False) -> dict[str, int]:
    """Pods of the release by the model version they serve: every one, terminating ones too, or with
    ``ready`` only the ready ones not terminating."""
    counts: dict[str, int] = {}
    for p in pods(namespace, release_selector(RELEASE)):
        if ready and (condition(p, "Ready") != "True" or p["metadata"].get("deletionTimestamp")):
            continue
        version = p["metadata"]["labels"][VERSION_LABEL]
        counts[version] = counts.get(version, 0) + 1
    return counts


def ready_versions(namespace: str) -> dict[str, int]:
    return pod_versions(namespace, ready=True)


def route_weights(namespace: str) -> tuple[int, int]:
    """The (stable, canary) weights of the chart's HTTPRoute, as the Rollout's plugin last set them."""
    route = kubectl_json("get", "httproute", "-n", namespace, f"{RELEASE}-model-server")
    [rule] = route["spec"]["rules"]
    weights = {ref["name"]: ref.get("weight", 1) for ref in rule["backendRefs"]}
    return weights[f"{RELEASE}-model-server-stable"], weights[f"{RELEASE}-model-server-canary"]


def install_stable(namespace: str, image: Image, drifted: bool = False) -> dict[str, tuple[str, str, int]]:
    """The bundle server, the release at 1.0.0 (a first Rollout goes to 100% at once), and the clients."""
    archives = serve_bundles(
        namespace, image, "--version", "2.0.0", *(["--drifted", "3.0.0"] if drifted else [])
    )
    helm_install(RELEASE, namespace, values(image))
    wait_until(
        lambda: (
            rollout(namespace)["status"].get("phase") == "Healthy"
            and ready_versions(namespace) == {"1.0.0": 3}
        ),
        240,
        "the first Rollout to be Healthy with three ready pods of 1.0.0",
    )
    # As on a cluster where the release has served for a while: Prometheus scrapes its pods (the
    # ServiceMonitor is new, so its scrape job comes with the next configuration reload), and the
    # stable version's series exist for the analysis to compare the canary's with.
    with port_forward("monitoring", "service/kube-prometheus-stack-prometheus", 9090) as prometheus:
        api = PrometheusAPI(prometheus)
        query = f'count(up{{namespace="{namespace}", rollouts_pod_template_hash!=""}} == 1)'
        wait_until(
            lambda: [r for r in api.query(query) if r["value"][1] == "3"],
            180,
            "Prometheus to scrape the three pods of 1.0.0",
            interval=2,
        )
    url = service_url(RELEASE, namespace)
    for name, args in CLIENTS.items():
        start_client(namespace, image, url, MODEL, *args, name=name)
    time.sleep(WARM_SECONDS)
    return archives


def stop_clients(namespace: str) -> dict[str, dict[str, Any]]:
    results = {name: stop_client(namespace, name) for name in CLIENTS}
    for name, result in results.items():
        print(f"{name}: {result}")
    return results


def show(namespace: str) -> None:
    """What `kubectl argo rollouts get rollout` shows a user (docs/operations/canary.md quotes it)."""
    print(
        kubectl("argo", "rollouts", "get", "rollout", f"{RELEASE}-model-server", "-n", namespace, check=False)
    )


def metric_phases(run: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: m["phase"] for m in run["status"].get("metricResults", [])}


def test_a_good_version_passes_every_analysis_and_is_promoted_without_a_failed_request(
    namespace: str, server_image: Image
) -> None:
    archives = install_stable(namespace, server_image)
    upgrade = {"version": "2.0.0", "source": url_source(archives["2.0.0"])}
    helm_install(RELEASE, namespace, values(server_image, model=upgrade), upgrade=True, wait=False)

    seen = set()  # the HTTPRoute's (stable, canary) weights along the way

    def promoted() -> bool:
        seen.add(route_weights(namespace))
        status = rollout(namespace)["status"]
        return (
            status.get("phase") == "Healthy"
            and status.get("stableRS") == status.get("currentPodHash")
            and ready_versions(namespace) == {"2.0.0": 3}
        )

    wait_until(promoted, 360, "the Rollout to promote 2.0.0 to every pod")
    # The clients run on until the last pod of 1.0.0 has drained and gone: a kept-alive connection
    # leaves it only then, and no request may fail on the way.
    wait_until(lambda: pod_versions(namespace) == {"2.0.0": 3}, 120, "the pods of 1.0.0 to be gone")
    show(namespace)
    results = stop_clients(namespace)

    for name, result in results.items():
        assert result["failed"] == 0, (name, result)
        assert set(result["versions"]) == {"1.0.0", "2.0.0"}, (name, result)
    # Through the Gateway, each step's weight exactly, then everything on the stable Service, which
    # now selects 2.0.0's pods.
    print(f"HTTPRoute weights seen (stable, canary): {sorted(seen)}")
    assert {(75, 25), (50, 50)} <= seen, seen
    assert route_weights(namespace) == (100, 0)
    stable = kubectl_json("get", "service", "-n", namespace, f"{RELEASE}-model-server-stable")
    stable_hash = rollout(namespace)["status"]["stableRS"]
    assert stable["spec"]["selector"]["rollouts-pod-template-hash"] == stable_hash, stable["spec"]
    runs = analysis_runs(namespace)
    # One analysis per step, each with every check measured and passed.
    assert [r["status"]["phase"] for r in runs] == ["Successful", "Successful"], [r["status"] for r in runs]
    for run in runs:
        assert metric_phases(run) == dict.fromkeys(
            ("scraped", "availability", "latency", "prediction-drift", "confidence"), "Successful"
        ), run["status"]
        assert all(m["count"] == 2 for m in run["status"]["metricResults"]), run["status"]["metricResults"]
    status = rollout(namespace)["status"]
    assert not status.get("abort"), status
    # The Deployment the Rollout references keeps the pod template and runs no pods of its own.
    deployment = kubectl_json("get", "deployment", "-n", namespace, f"{RELEASE}-model-server")
    assert deployment["spec"]["replicas"] == 0, deployment["spec"]


def test_a_version_whose_predictions_drift_is_aborted_by_its_analysis_and_traffic_returns(
    namespace: str, server_image: Image
) -> None:
    archives = install_stable(namespace, server_image, drifted=True)
    upgrade = {"version": "3.0.0", "source": url_source(archives["3.0.0"])}
    helm_install(RELEASE, namespace, values(server_image, model=upgrade), upgrade=True, wait=False)

    weights = set()

    def aborted() -> dict[str, Any] | None:
        weights.add(route_weights(namespace))
        status = rollout(namespace)["status"]
        return status if status.get("abort") and status.get("phase") == "Degraded" else None

    status = wait_until(aborted, 300, "the Rollout to abort 3.0.0")
    # The first step's share went to the canary through the Gateway, and all of it came back.
    assert (75, 25) in weights, weights
    wait_until(lambda: route_weights(namespace) == (100, 0), 60, "the HTTPRoute to send everything to 1.0.0")
    wait_until(
        lambda: ready_versions(namespace) == {"1.0.0": 3}, 120, "all traffic back on three pods of 1.0.0"
    )
    # The canary pods are gone, so a few seconds more of traffic all reach 1.0.0.
    time.sleep(5)
    show(namespace)
    results = stop_clients(namespace)

    [run] = analysis_runs(namespace)
    assert run["status"]["phase"] == "Failed", run["status"]
    phases = metric_phases(run)
    assert phases["prediction-drift"] == "Failed", phases
    # The new version fails nothing else: it answers, fast, and as confidently.
    assert all(
        phases[m] in ("Successful", "Running", "Pending") for m in ("scraped", "availability", "latency")
    ), phases
    assert "prediction-drift" in status["message"], status["message"]
    events = kubectl_json("get", "events", "-n", namespace)["items"]
    failed = [e["message"] for e in events if e.get("reason") in ("AnalysisRunFailed", "RolloutAborted")]
    assert any("prediction-drift" in m for m in failed), failed

    # Nothing failed outright: the drifted version answered 200s. What clients got from it is the
    # damage the canary bounded: a share of the requests in the window before the analysis failed.
    total = sum(sum(r["versions"].values()) for r in results.values())
    drifted = sum(r["versions"].get("3.0.0", 0) for r in results.values())
    print(f"answers from the drifted canary: {drifted} of {total} ({drifted / total:.1%})")
    for name, result in results.items():
        assert result["failed"] == 0, (name, result)
    assert 0 < drifted < total * 0.25, (drifted, total)
