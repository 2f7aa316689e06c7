"""examples/bucket-values.yaml on a real cluster, with the bucket in the cluster: SeaweedFS's S3 gateway
(tests/support/seaweedfs.py) in the test's namespace instead of AWS, and a Secret with a read-only
access key instead of EKS IRSA (IRSA needs AWS's token exchange, which no cluster here has).

A training job writes churn-classifier 2.3.0 to s3://ml-models/churn/ with `model-server push` as the
store's admin, and the chart values are the example's with what `push` printed (uri, sha256, endpoint,
region) and the Secret's name. The release with the right sha256 becomes Ready and answers `helm test`
over HTTP and gRPC; one with a wrong sha256 stays live and not ready with the reason, without a restart.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from support import seaweedfs
from support.cluster import (
    CHART,
    Image,
    apply,
    assert_fetch_failed,
    condition,
    helm_install,
    helm_test,
    kubectl,
    pods,
    python_pod,
    release_selector,
    restarts,
    run_python,
)
from support.paths import ROOT

EXAMPLE = CHART / "examples" / "bucket-values.yaml"
TRAIN = (ROOT / "tests" / "support" / "churn.py").read_text()
CREDENTIALS = "churn-model-reader"


def pushed_values(log: str) -> dict[str, Any]:
    """The `chart values:` block `model-server push` printed."""
    lines = log.splitlines()
    start = lines.index("chart values:") + 1
    block = []
    for line in lines[start:]:
        if line and not line.startswith(" ") and block:
            break
        block.append(line)
    values: dict[str, Any] = yaml.safe_load("\n".join(block))
    return values


def test_bucket_example_installs_from_s3_in_the_cluster_and_a_wrong_checksum_stays_not_ready(
    namespace: str, server_image: Image
) -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    uri = example["model"]["source"]["bucket"]["uri"]
    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    region = example["model"]["source"]["bucket"]["region"]
    version = example["model"]["version"]

    apply(namespace, *seaweedfs.manifests(seaweedfs.image()))
    seaweedfs.create_bucket(namespace, bucket)
    admin = {"AWS_ACCESS_KEY_ID": seaweedfs.ADMIN[0], "AWS_SECRET_ACCESS_KEY": seaweedfs.ADMIN[1]}
    args = ["--version", version, "--out", "/tmp/churn", "--push", uri]
    args += ["--endpoint", seaweedfs.endpoint(namespace), "--region", region]
    job = python_pod("push", server_image, TRAIN, args, env=admin)
    log = run_python(namespace, server_image, "push", TRAIN, args, pod=job)
    pushed = pushed_values(log)
    source = pushed["model"]["source"]["bucket"]
    assert (pushed["model"]["name"], pushed["model"]["version"]) == ("churn-classifier", version), log
    assert source["uri"] == uri and source["region"] == region, log
    assert f"sha256 {source['sha256']}" in log, log

    # The reader may read the bucket, nothing else; only the fetch init container sees the Secret.
    reader = {"AWS_ACCESS_KEY_ID": seaweedfs.READER[0], "AWS_SECRET_ACCESS_KEY": seaweedfs.READER[1]}
    apply(
        namespace,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": CREDENTIALS}, "stringData": reader},
    )
    values = copy.deepcopy(example)
    values["model"]["source"]["bucket"].update(source)
    values["model"]["source"]["bucket"]["credentials"] = {"existingSecret": CREDENTIALS}
    values.update(server_image.values())
    values["resources"] = {"requests": {"cpu": "50m"}}
    wrong = copy.deepcopy(values)
    wrong["model"]["source"]["bucket"]["sha256"] = "0" * 64

    helm_install("wrong-sha", namespace, wrong, wait=False)
    helm_install("churn", namespace, values)

    [pod] = pods(namespace, release_selector("churn"))
    assert condition(pod, "Ready") == "True"
    assert restarts(pod) == 0
    [fetch] = pod["status"]["initContainerStatuses"]
    assert fetch["state"]["terminated"]["exitCode"] == 0 and fetch["restartCount"] == 0, fetch
    fetched = kubectl("logs", "-n", namespace, pod["metadata"]["name"], "-c", "fetch-model")
    assert f"unpacked {uri} into /models" in fetched, fetched
    assert f"read as access key {seaweedfs.READER[0]} (file /var/run/secrets/model-server/storage/" in fetched
    print(f"\n$ kubectl logs {pod['metadata']['name']} -c fetch-model\n{fetched}")
    # The server container has no access to the store's credentials.
    server = pod["spec"]["containers"][0]
    assert not any(m["name"] == "storage-credentials" for m in server["volumeMounts"]), server["volumeMounts"]
    assert "envFrom" not in server

    out = helm_test("churn", namespace)
    assert f"OK: churn-classifier {version} predicted" in out, out
    assert f"OK: churn-classifier {version} answered over gRPC" in out, out

    reason = f"sha256 of {uri} is {source['sha256']}, expected {'0' * 64}: refusing to unpack it"
    seen = assert_fetch_failed(namespace, "wrong-sha", reason)
    print(f"\nwrong sha256: {seen}")
