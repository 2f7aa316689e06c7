"""The `url` source when the download goes wrong, on a real cluster: a wrong sha256 and a download broken
midway. Each release's init container records the failure (`--record-failure`), so the pod is live and
not ready with the reason in its logs, its `/readyz` and the probe events, and never restarts.

The archives come from an HTTP server pod in the test's namespace (tests/support/bundleserver.py), which
serves the demo bundle's reproducible archive whole, and cut after half its bytes under /broken/.
"""

from __future__ import annotations

from typing import Any

from support.cluster import (
    RESTRICTED_CONTAINER,
    Image,
    apply,
    assert_fetch_failed,
    condition,
    helm_install,
    kubectl,
    kubectl_json,
    wait_until,
)
from support.paths import ROOT

SERVER_SOURCE = (ROOT / "tests" / "support" / "bundleserver.py").read_text()
ARCHIVE = "iris-classifier-1.0.0.tar.gz"
BUNDLE = "/opt/model-server/bundles/iris-classifier"


def bundle_server(image: Image) -> list[dict[str, Any]]:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bundles", "labels": {"app": "bundles"}},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "http",
                    "image": str(image),
                    "command": ["python", "-c", SERVER_SOURCE, "--bundle", BUNDLE, "--port", "8080"],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": f"/{ARCHIVE}", "port": 8080}, "periodSeconds": 1},
                    "securityContext": RESTRICTED_CONTAINER,
                    "resources": {
                        "requests": {"cpu": "20m", "memory": "64Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bundles"},
        "spec": {"selector": {"app": "bundles"}, "ports": [{"port": 8080}]},
    }
    return [pod, service]


def url_values(image: Image, uri: str, sha256: str) -> dict[str, Any]:
    return {
        **image.values(),
        "model": {"source": {"type": "url", "url": {"uri": uri, "sha256": sha256}}},
        "resources": {"requests": {"cpu": "50m"}},
    }


def test_a_wrong_sha256_or_a_broken_download_keeps_the_pod_live_not_ready_and_says_why(
    namespace: str, server_image: Image
) -> None:
    apply(namespace, *bundle_server(server_image))
    wait_until(
        lambda: condition(kubectl_json("get", "pod", "-n", namespace, "bundles"), "Ready") == "True",
        120,
        "the bundle server to serve the archive",
    )
    [line] = [x for x in kubectl("logs", "-n", namespace, "bundles").splitlines() if x.startswith("ARCHIVE")]
    _, path, sha256, size = line.split()
    base = f"http://bundles.{namespace}.svc.cluster.local:8080"
    wrong = "0" * 64

    # Both releases at once: each is judged on its own pod.
    helm_install("wrong-sha", namespace, url_values(server_image, base + path, wrong), wait=False)
    helm_install("broken", namespace, url_values(server_image, f"{base}/broken{path}", sha256), wait=False)

    seen = assert_fetch_failed(
        namespace, "wrong-sha", f"sha256 of {base}{path} is {sha256}, expected {wrong}: refusing to unpack it"
    )
    print(f"\nwrong sha256: {seen}")
    seen = assert_fetch_failed(
        namespace,
        "broken",
        f"cannot download {base}/broken{path}: the download is incomplete (the connection closed after "
        f"{int(size) // 2} of {size} bytes)",
    )
    print(f"\nbroken download: {seen}")
