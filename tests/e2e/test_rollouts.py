"""Rollouts under load on a real cluster: not one failed request.

Two clients run in pods of the test's namespace and send predictions through the Service without
pause, retrying nothing (tests/support/podclient.py): one opens a connection per request, the other
keeps three connections alive as HTTP libraries' pools do. Each counts every request and every failure
(a status other than 200, a malformed answer, a transport error). With two replicas, while
- `helm upgrade` rolls the release to a second version of the model,
- the pods are deleted one after the other,
- an upgrade to a version the bundle does not carry stalls and `helm rollback` recovers it,
neither client may see a single failure. What makes that hold: `maxUnavailable: 0` (old pods serve
until new ones are ready), the preStop sleep (the endpoint is removed before SIGTERM), and the server's
drain (requests on open connections are served and answered with `Connection: close`, so a kept-alive
client moves to a ready pod instead of having a connection closed under its next request).
"""

from __future__ import annotations

import time
from typing import Any

from support.cluster import (
    Image,
    condition,
    delete_and_watch,
    helm,
    helm_install,
    kubectl_json,
    pods,
    ready_endpoints,
    release_selector,
    restarts,
    serve_bundle,
    service_url,
    start_client,
    stop_client,
    wait_until,
)

RELEASE = "iris"
MODEL = "iris-classifier"
VERSION_LABEL = "model-server.io/model-version"
# Seconds of load before and after each disruption: enough for thousands of requests per client.
LOAD_SECONDS = 8
CLIENTS = {
    "keep-alive": ["--connection", "keep-alive", "--concurrency", "3"],
    "close": ["--connection", "close", "--concurrency", "1"],
}


def values(image: Image, **extra: Any) -> dict[str, Any]:
    """Two replicas, small CPU requests (the suite shares two cores), probes every second so pods turn
    ready quickly; a startup budget long enough that a pod never ready is not restarted during a test."""
    return {
        **image.values(),
        "replicaCount": 2,
        "resources": {"requests": {"cpu": "50m"}},
        "probes": {
            "startup": {"periodSeconds": 1, "failureThreshold": 300},
            "readiness": {"periodSeconds": 1},
        },
        **extra,
    }


def start_clients(namespace: str, image: Image) -> None:
    url = service_url(RELEASE, namespace)
    for name, args in CLIENTS.items():
        start_client(namespace, image, url, MODEL, *args, name=name)


def stop_clients(namespace: str) -> dict[str, dict[str, Any]]:
    results = {name: stop_client(namespace, name) for name in CLIENTS}
    for name, result in results.items():
        print(f"{name}: {result}")
    return results


def assert_no_failures(results: dict[str, dict[str, Any]]) -> None:
    for name, result in results.items():
        assert result["failed"] == 0, (name, result)
        assert all(result["protocols"][p].get("ok", 0) > 0 for p in ("named", "v1", "v2")), (name, result)


def deployment(namespace: str) -> dict[str, Any]:
    [found] = kubectl_json("get", "deployments", "-n", namespace, "-l", release_selector(RELEASE))["items"]
    return found  # type: ignore[no-any-return]


def replica_sets(namespace: str) -> dict[str, dict[str, Any]]:
    """The release's ReplicaSets by the model version their pods carry."""
    found = kubectl_json("get", "replicasets", "-n", namespace, "-l", release_selector(RELEASE))["items"]
    return {rs["spec"]["template"]["metadata"]["labels"][VERSION_LABEL]: rs for rs in found}


def serving(namespace: str, version: str) -> list[dict[str, Any]] | None:
    """The release's pods once there are exactly two, both ready on ``version``, and nothing else."""
    found = pods(namespace, release_selector(RELEASE))
    ok = len(found) == 2 and all(
        p["metadata"]["labels"][VERSION_LABEL] == version
        and condition(p, "Ready") == "True"
        and not p["metadata"].get("deletionTimestamp")
        for p in found
    )
    return found if ok else None


def replaced(namespace: str, deleted: list[str]) -> bool:
    """Two ready pods of 1.0.0, none of them one of ``deleted`` (those deleted so far are gone)."""
    found = serving(namespace, "1.0.0")
    return found is not None and not {p["metadata"]["name"] for p in found} & set(deleted)


def scaled_down(rs: dict[str, Any]) -> bool:
    return rs["spec"]["replicas"] == 0 and rs["status"].get("replicas", 0) == 0


def exit_codes(states: list[dict[str, Any]]) -> list[int]:
    """The server container's exit codes a deleted pod reported (delete_and_watch's states)."""
    return [
        s["state"]["terminated"]["exitCode"]
        for obj in states
        for s in obj["status"].get("containerStatuses", [])
        if "terminated" in s.get("state", {})
    ]


def test_upgrade_to_a_second_model_version_under_load_fails_no_request(
    namespace: str, server_image: Image
) -> None:
    # Version 2.0.0 of the same model: the image's bundle as an archive whose metadata says 2.0.0.
    url, sha256, _ = serve_bundle(namespace, server_image, "--version", "2.0.0")
    helm_install(RELEASE, namespace, values(server_image))
    start_clients(namespace, server_image)
    time.sleep(LOAD_SECONDS)

    upgrade = {"version": "2.0.0", "source": {"type": "url", "url": {"uri": url, "sha256": sha256}}}
    helm_install(RELEASE, namespace, values(server_image, model=upgrade), upgrade=True)
    # Every old pod drained and gone: kept-alive connections to them were open until then.
    new = wait_until(lambda: serving(namespace, "2.0.0"), 180, "two ready pods of 2.0.0 and no other")
    time.sleep(LOAD_SECONDS)
    results = stop_clients(namespace)

    assert_no_failures(results)
    for name, result in results.items():
        assert set(result["versions"]) == {"1.0.0", "2.0.0"}, (name, result)
    sets = replica_sets(namespace)
    assert set(sets) == {"1.0.0", "2.0.0"}, list(sets)
    assert sets["2.0.0"]["status"].get("readyReplicas") == 2, sets["2.0.0"]["status"]
    assert scaled_down(sets["1.0.0"]), sets["1.0.0"]["status"]
    status = deployment(namespace)["status"]
    assert (status.get("updatedReplicas"), status.get("readyReplicas")) == (2, 2), status
    assert all(restarts(p) == 0 for p in new)
    assert len(ready_endpoints(RELEASE, namespace)) == 2


def test_pods_deleted_one_after_the_other_under_load_fail_no_request(
    namespace: str, server_image: Image
) -> None:
    helm_install(RELEASE, namespace, values(server_image))
    first = [p["metadata"]["name"] for p in pods(namespace, release_selector(RELEASE))]
    assert len(first) == 2, first
    start_clients(namespace, server_image)
    time.sleep(LOAD_SECONDS)

    for i, name in enumerate(first):
        # Returns once the pod is gone: preStop sleep, SIGTERM, the drain, exit.
        states = delete_and_watch(namespace, name)
        assert exit_codes(states)[-1:] == [0], exit_codes(states)
        deleted = first[: i + 1]
        wait_until(lambda: replaced(namespace, deleted), 180, f"a ready replacement of {name}")
    time.sleep(LOAD_SECONDS)
    results = stop_clients(namespace)

    assert_no_failures(results)
    for name, result in results.items():
        assert result["versions"] == {"1.0.0": result["versions"]["1.0.0"]}, (name, result)
    now = [p["metadata"]["name"] for p in pods(namespace, release_selector(RELEASE))]
    assert not set(now) & set(first), (now, first)


def test_an_upgrade_to_a_missing_version_stalls_under_load_and_rollback_recovers(
    namespace: str, server_image: Image
) -> None:
    """The image's bundle carries 1.0.0 only: the new pod of 2.0.0 is live and never ready, the old pods
    keep serving, the Deployment reports the stall after its progress deadline, and `helm rollback`
    returns to 1.0.0 with the stalled ReplicaSet at 0."""
    helm_install(RELEASE, namespace, values(server_image))
    old = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods(namespace, release_selector(RELEASE))}
    start_clients(namespace, server_image)
    time.sleep(LOAD_SECONDS)

    # A short progress deadline, so the Deployment reports the stall within the test.
    missing = values(server_image, model={"version": "2.0.0"}, rollout={"progressDeadlineSeconds": 20})
    helm_install(RELEASE, namespace, missing, upgrade=True, wait=False)

    def stalled() -> dict[str, Any] | None:
        for c in deployment(namespace)["status"].get("conditions", []):
            if c["type"] == "Progressing" and c["reason"] == "ProgressDeadlineExceeded":
                return c
        return None

    stall = wait_until(stalled, 180, "the Deployment to report its rollout stalled")
    assert stall["status"] == "False", stall
    found = pods(namespace, release_selector(RELEASE))
    [new] = [p for p in found if p["metadata"]["labels"][VERSION_LABEL] == "2.0.0"]
    statuses = new["status"]["containerStatuses"]
    assert [s["name"] for s in statuses if "running" in s["state"]] == ["server"], statuses
    assert condition(new, "Ready") == "False"
    assert restarts(new) == 0
    serving_old = {p["metadata"]["name"] for p in found if condition(p, "Ready") == "True"}
    assert serving_old == set(old), (serving_old, old)
    assert sorted(ready_endpoints(RELEASE, namespace)) == sorted(old.values())
    time.sleep(LOAD_SECONDS)  # load while the rollout stands stalled

    helm("rollback", RELEASE, "1", "--namespace", namespace, "--wait", "--timeout", "3m")
    back = wait_until(lambda: serving(namespace, "1.0.0"), 120, "two ready pods of 1.0.0 and no other")
    wait_until(lambda: scaled_down(replica_sets(namespace)["2.0.0"]), 120, "the stalled ReplicaSet at 0")
    time.sleep(LOAD_SECONDS)
    results = stop_clients(namespace)

    assert_no_failures(results)
    for name, result in results.items():
        assert set(result["versions"]) == {"1.0.0"}, (name, result)
    # The rollback returned to the old ReplicaSet: the same pods served throughout.
    assert {p["metadata"]["name"] for p in back} == set(old)
    assert all(restarts(p) == 0 for p in back)
    sets = replica_sets(namespace)
    assert sets["1.0.0"]["status"].get("readyReplicas") == 2, sets["1.0.0"]["status"]

    def progressing() -> list[tuple[str, str]] | None:
        found = [
            (c["status"], c["reason"])
            for c in deployment(namespace)["status"]["conditions"]
            if c["type"] == "Progressing"
        ]
        return found if found == [("True", "NewReplicaSetAvailable")] else None

    wait_until(progressing, 60, "the Deployment to report its rollout complete again")
