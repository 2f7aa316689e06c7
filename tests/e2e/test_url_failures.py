"""The `url` source when the download goes wrong, on a real cluster: a wrong sha256 and a download broken
midway. Each release's init container records the failure (`--record-failure`), so the pod is live and
not ready with the reason in its logs, its `/readyz` and the probe events, and never restarts.

The archives come from an HTTP server pod in the test's namespace (tests/support/bundleserver.py), which
serves the demo bundle's reproducible archive whole, and cut after half its bytes under /broken/.
"""

from __future__ import annotations

from typing import Any

from support.cluster import Image, assert_fetch_failed, helm_install, serve_bundle


def url_values(image: Image, uri: str, sha256: str) -> dict[str, Any]:
    return {
        **image.values(),
        "model": {"source": {"type": "url", "url": {"uri": uri, "sha256": sha256}}},
        "resources": {"requests": {"cpu": "50m"}},
    }


def test_a_wrong_sha256_or_a_broken_download_keeps_the_pod_live_not_ready_and_says_why(
    namespace: str, server_image: Image
) -> None:
    url, sha256, size = serve_bundle(namespace, server_image)
    base, _, name = url.rpartition("/")
    path = f"/{name}"
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
        f"{size // 2} of {size} bytes)",
    )
    print(f"\nbroken download: {seen}")
