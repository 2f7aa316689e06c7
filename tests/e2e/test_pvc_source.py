"""examples/pvc-values.yaml on a real cluster: the bundle on a PersistentVolumeClaim that a training job
filled, mounted read-only by the server.

The claim `model-bundles` is bound to a PersistentVolume made for this test alone (a hostPath on the
node, named after the namespace, deleted afterwards: PVs are cluster-scoped). A training job
(tests/support/churn.py) writes churn-classifier 2.3.0 into it at the example's subPath. hostPath volumes
get no fsGroup, and the kubelet creates the folder as root, so that job runs as root: the namespace
enforces `baseline` while it runs, then `restricted` before the chart is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cluster import (
    CHART,
    MANAGED_BY,
    Image,
    apply,
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

EXAMPLE = CHART / "examples" / "pvc-values.yaml"
TRAIN = (ROOT / "tests" / "support" / "churn.py").read_text()
RELEASE = "churn"


@pytest.fixture
def pod_security() -> str:
    """`baseline` until the training job has run (as root); the test then enforces `restricted`."""
    return "baseline"


def as_root(pod: dict[str, Any]) -> dict[str, Any]:
    pod["spec"]["containers"][0]["securityContext"] = {
        **pod["spec"]["containers"][0]["securityContext"],
        "runAsUser": 0,
        "runAsNonRoot": False,
    }
    return pod


@pytest.fixture
def volume(namespace: str, server_image: Image) -> Iterator[tuple[str, str]]:
    """A hostPath PersistentVolume pre-bound to the claim `model-bundles` of this namespace; emptied,
    deleted (and its folder removed) afterwards."""
    name = f"{namespace}-bundles"
    path = f"/tmp/{name}"
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": MANAGED_BY}},
        "spec": {
            "capacity": {"storage": "64Mi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "claimRef": {"namespace": namespace, "name": "model-bundles"},
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
        },
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "model-bundles"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "volumeName": name,
            "resources": {"requests": {"storage": "64Mi"}},
        },
    }
    kubectl("apply", "-f", "-", input=yaml.safe_dump(pv))
    try:
        apply(namespace, claim)
        yield name, path
    finally:
        # Empty the folder from a pod (the node may be another machine, as in kind), then drop the claim
        # and the PV; the namespace fixture removes the rest.
        kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=baseline", "--overwrite")
        kubectl("delete", "deployments", "--all", "-n", namespace, "--cascade=foreground", "--timeout=120s")
        volumes = {"bundles": ("/data", {"persistentVolumeClaim": {"claimName": "model-bundles"}})}
        source = "import pathlib, shutil\nfor p in pathlib.Path('/data').iterdir(): shutil.rmtree(p)"
        cleaner = as_root(python_pod("cleaner", server_image, source, [], volumes=volumes))
        run_python(namespace, server_image, "cleaner", source, [], pod=cleaner)
        kubectl("delete", "pods", "--all", "-n", namespace, "--timeout=120s", timeout=150)
        kubectl("delete", "pvc", "model-bundles", "-n", namespace, "--timeout=60s")
        kubectl("delete", "persistentvolume", name, "--timeout=60s")
        # On this machine's cluster the node is this host: remove the folder the kubelet created.
        # (A kind node is a container, gone with the cluster.)
        folder = Path(path)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def test_pvc_example_serves_a_bundle_a_training_job_wrote_to_a_local_persistent_volume(
    namespace: str, server_image: Image, volume: tuple[str, str]
) -> None:
    values = yaml.safe_load(EXAMPLE.read_text())
    source = values["model"]["source"]["pvc"]
    version = values["model"]["version"]
    volumes = {"bundles": ("/data", {"persistentVolumeClaim": {"claimName": source["claimName"]}})}
    job = as_root(
        python_pod(
            "train",
            server_image,
            TRAIN,
            ["--version", version, "--out", f"/data/{source['subPath']}"],
            volumes=volumes,
        )
    )
    log = run_python(namespace, server_image, "train", TRAIN, [], pod=job)
    assert f"BUNDLE /data/{source['subPath']}" in log, log

    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    values.update(server_image.values())
    values["resources"] = {"requests": {"cpu": "50m"}}
    helm_install(RELEASE, namespace, values)
    [pod] = pods(namespace, release_selector(RELEASE))
    assert condition(pod, "Ready") == "True"
    assert restarts(pod) == 0
    [mount] = [m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == "models"]
    assert mount == {"name": "models", "mountPath": "/models", "readOnly": True, "subPath": source["subPath"]}
    claim_volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "models")
    assert claim_volume["persistentVolumeClaim"] == {"claimName": "model-bundles", "readOnly": True}

    out = helm_test(RELEASE, namespace)
    assert f"OK: churn-classifier {version} predicted" in out, out
    assert f"OK: churn-classifier {version} answered over gRPC" in out, out
