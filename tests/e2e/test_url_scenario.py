"""ci/url-hpa-pdb-netpol-values.yaml on a real cluster: the `url` model source with the archive served
in the cluster, autoscaling from two replicas, a disruption budget and a NetworkPolicy.

The archive comes from an HTTP server pod in the test's namespace (support.cluster.serve_bundle), made
from the same image by `model-server archive` (byte-reproducible, so the scenario's pinned sha256
holds; tests/chart checks the pin without a cluster). Each replica's init container downloads it,
checks the sha256 and unpacks it into the pod's emptyDir, from which the server loads.
"""

from __future__ import annotations

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
    serve_bundle,
    service,
    service_url,
    start_client,
    stop_client,
    wait_until,
)

SCENARIO = CHART / "ci" / "url-hpa-pdb-netpol-values.yaml"
RELEASE = "iris"


def test_url_scenario_fetches_the_archive_in_the_cluster_and_serves_from_two_replicas(
    namespace: str, server_image: Image
) -> None:
    url, _, _ = serve_bundle(namespace, server_image)
    values = yaml.safe_load(SCENARIO.read_text())
    values["model"]["source"]["url"]["uri"] = url
    helm_install(RELEASE, namespace, {**values, **server_image.values()})
    # With autoscaling the chart leaves `replicas` to the HPA (so an upgrade never resets its count): the
    # Deployment starts with one pod and the HPA raises it to minReplicas at its next sync.
    deployment = f"deployment/{service(RELEASE, namespace)['metadata']['name']}"
    wait_until(
        lambda: kubectl_json("get", "-n", namespace, deployment)["status"].get("readyReplicas") == 2,
        120,
        "the HPA to scale the Deployment to its two minReplicas",
    )

    replicas = pods(namespace, release_selector(RELEASE))
    assert len(replicas) == 2, [p["metadata"]["name"] for p in replicas]
    for pod in replicas:
        assert condition(pod, "Ready") == "True"
        assert restarts(pod) == 0
        [fetch] = pod["status"]["initContainerStatuses"]
        assert fetch["name"] == "fetch-model"
        assert fetch["state"]["terminated"]["exitCode"] == 0
        assert fetch["restartCount"] == 0

    hpa = kubectl_json("get", "hpa", "-n", namespace)["items"]
    assert [(h["spec"]["minReplicas"], h["spec"]["maxReplicas"]) for h in hpa] == [(2, 4)]
    pdb = kubectl_json("get", "pdb", "-n", namespace)["items"]
    assert [p["status"].get("disruptionsAllowed") for p in pdb] == [1]

    # Traffic from a client that opens a connection per request, running while `helm test` does.
    url = service_url(RELEASE, namespace)
    client = start_client(namespace, server_image, url, "iris-classifier", "--connection", "close")
    out = helm_test(RELEASE, namespace)
    assert "OK: iris-classifier 1.0.0 predicted" in out, out
    result = stop_client(namespace, client)
    assert result["failed"] == 0, result
    assert all(result["protocols"][p]["ok"] >= 1 for p in ("named", "v1", "v2")), result
    assert set(result["versions"]) == {"1.0.0"}, result
