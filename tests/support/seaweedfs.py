"""SeaweedFS's S3 gateway as a pod of the cluster suite, in the test's own namespace: the image `make e2e`
builds (FROM scratch plus the pinned `weed`, mk/sources.mk), one `weed server` with its master, volume
server, filer and S3 gateway in one process, its data in an emptyDir, and the identities of
tests/support/emulators.py: an admin, a reader of the `ml-models` bucket only, nothing for anonymous.

    apply(namespace, *seaweedfs.manifests(image))
    seaweedfs.create_bucket(namespace, "ml-models")
    # then s3://ml-models/... at seaweedfs.endpoint(namespace)
"""

from __future__ import annotations

import json
import os
from typing import Any

from .cluster import RESTRICTED_CONTAINER, Image, condition, kubectl, kubectl_json, wait_until

S3_PORT = 8333
ADMIN = ("admin-key-id", "admin-secret-key-0123456789")
READER = ("reader-key-id", "reader-secret-key-0123456789")
BUCKET = "ml-models"


def image() -> Image:
    ref = os.environ.get("E2E_SEAWEEDFS_IMAGE")
    assert ref, "E2E_SEAWEEDFS_IMAGE is not set: run the suite with `make e2e`"
    return Image.parse(ref)


def endpoint(namespace: str) -> str:
    return f"http://seaweedfs.{namespace}.svc.cluster.local:{S3_PORT}"


def manifests(img: Image) -> list[dict[str, Any]]:
    identities = {
        "identities": [
            {"name": "admin", "credentials": [{"accessKey": ADMIN[0], "secretKey": ADMIN[1]}],
             "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
            {"name": "reader", "credentials": [{"accessKey": READER[0], "secretKey": READER[1]}],
             "actions": [f"Read:{BUCKET}", f"List:{BUCKET}"]},
        ]
    }  # fmt: skip
    config = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "seaweedfs-identities"},
        "stringData": {"s3.json": json.dumps(identities)},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "seaweedfs", "labels": {"app": "seaweedfs"}},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [
                {
                    "name": "weed",
                    "image": str(img),
                    "imagePullPolicy": "IfNotPresent",
                    "args": [
                        "server",
                        "-dir=/data",
                        # The parts reach each other on the pod's loopback; only the S3 port is a Service.
                        "-ip=127.0.0.1",
                        "-ip.bind=0.0.0.0",
                        # Nothing leaves the cluster: no usage reports.
                        "-master.telemetry=false",
                        "-master.volumeSizeLimitMB=64",
                        "-volume.max=8",
                        "-s3",
                        f"-s3.port={S3_PORT}",
                        "-s3.config=/etc/seaweedfs/s3.json",
                        "-s3.port.iceberg=0",
                        "-s3.port.lance=0",
                        "-s3.iam=false",
                    ],
                    "ports": [{"name": "s3", "containerPort": S3_PORT}],
                    "readinessProbe": {"tcpSocket": {"port": S3_PORT}, "periodSeconds": 1},
                    "securityContext": {**RESTRICTED_CONTAINER, "runAsUser": 65532, "runAsGroup": 65532},
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "128Mi"},
                        "limits": {"memory": "512Mi"},
                    },
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/data"},
                        {"name": "tmp", "mountPath": "/tmp"},
                        {"name": "identities", "mountPath": "/etc/seaweedfs", "readOnly": True},
                    ],
                }
            ],
            "securityContext": {"fsGroup": 65532},
            "volumes": [
                {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                {"name": "identities", "secret": {"secretName": "seaweedfs-identities"}},
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "seaweedfs"},
        "spec": {"selector": {"app": "seaweedfs"}, "ports": [{"name": "s3", "port": S3_PORT}]},
    }
    return [config, pod, service]


def create_bucket(namespace: str, bucket: str = BUCKET) -> None:
    """Through SeaweedFS's own shell in the pod (as tests/support/emulators.py does on loopback)."""
    wait_until(
        lambda: condition(kubectl_json("get", "pod", "-n", namespace, "seaweedfs"), "Ready") == "True",
        120,
        "the S3 gateway to listen",
    )

    def created() -> bool:
        out = kubectl(
            "exec", "-i", "-n", namespace, "seaweedfs", "--", "weed", "shell", "-master=127.0.0.1:9333",
            input=f"s3.bucket.create -name {bucket}\nexit\n",
            check=False,
        )  # fmt: skip
        # Until the filer has joined, the shell answers with an error: try again.
        return f"created bucket {bucket}" in out

    wait_until(created, 90, f"SeaweedFS to create the bucket {bucket}", interval=2)
