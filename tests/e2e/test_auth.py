"""Bearer-token auth from a Secret on a real cluster: predictions through the Service need a token in
every protocol, and a rotated Secret is picked up by the running pod without a restart.

The rotation is the kubelet's own: the Secret is replaced through the API and the kubelet rewrites the
mounted file at its next sync of the pod (up to its sync period, a minute by default, plus its cache's
TTL); the server re-reads the file when it changes (model_server/auth.py). Nothing in the test touches
the pod.
"""

from __future__ import annotations

import json
from typing import Any

from support.cluster import (
    Image,
    apply,
    condition,
    helm_install,
    helm_test,
    http,
    pods,
    port_forward,
    release_selector,
    restarts,
    run_client,
    service_grpc_target,
    service_url,
    wait_until,
)

RELEASE = "iris"
SECRET = "iris-tokens"
FIRST = "first-token-0123456789abcdef"
SECOND = "second-token-0123456789abcdef"
ROW = {"instances": [{"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}]}
PROTOCOLS = ("named", "v1", "v2", "grpc")


def tokens_secret(*tokens: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET},
        "stringData": {"tokens": "".join(f"{t}\n" for t in tokens)},
    }


def clients(namespace: str, image: Image, token: str | None, name: str) -> dict[str, Any]:
    """Eight predictions through the Service, two per protocol, with this token (or none)."""
    args = ["--protocols", ",".join(PROTOCOLS), "--grpc-target", service_grpc_target(RELEASE, namespace)]
    args += ["--requests", "8", "--concurrency", "2"]
    if token:
        args += ["--token", token]
    return run_client(namespace, image, service_url(RELEASE, namespace), "iris-classifier", *args, name=name)


def refused(result: dict[str, Any]) -> bool:
    return result["protocols"] == {
        "named": {"status:401": 2},
        "v1": {"status:401": 2},
        "v2": {"status:401": 2},
        "grpc": {"grpc:UNAUTHENTICATED": 2},
    }


def test_predictions_need_a_token_from_the_secret_and_a_rotated_secret_applies_without_restart(
    namespace: str, server_image: Image
) -> None:
    apply(namespace, tokens_secret(FIRST))
    values = {
        **server_image.values(),
        "auth": {"enabled": True, "existingSecret": SECRET},
        "resources": {"requests": {"cpu": "50m"}},
    }
    helm_install(RELEASE, namespace, values)
    [pod] = pods(namespace, release_selector(RELEASE))
    assert condition(pod, "Ready") == "True"

    assert refused(result := clients(namespace, server_image, None, "no-token")), result
    assert refused(result := clients(namespace, server_image, "not-a-token-0123456789", "wrong")), result
    result = clients(namespace, server_image, FIRST, "first")
    assert result["protocols"] == {p: {"ok": 2} for p in PROTOCOLS}, result
    assert "OK: iris-classifier 1.0.0 answered over gRPC" in helm_test(RELEASE, namespace)

    apply(namespace, tokens_secret(SECOND))
    name = pod["metadata"]["name"]
    with port_forward(namespace, f"pod/{name}", 8000) as base:

        def status(token: str) -> int:
            return http("POST", f"{base}/predict", ROW, {"Authorization": f"Bearer {token}"})[0]

        # The kubelet rewrites the mounted file at its next sync of the pod.
        wait_until(lambda: status(SECOND) == 200, 240, "the kubelet to update the mounted Secret", interval=2)
        answer = http("POST", f"{base}/predict", ROW, {"Authorization": f"Bearer {FIRST}"})
        assert answer[0] == 401, answer
        print(f"\nafter the rotation, the old token: {answer[0]} {json.dumps(answer[1])}")

    assert refused(result := clients(namespace, server_image, FIRST, "first-again")), result
    result = clients(namespace, server_image, SECOND, "second")
    assert result["protocols"] == {p: {"ok": 2} for p in PROTOCOLS}, result
    # The same pod and container served before and after: no restart, no rollout.
    [after] = pods(namespace, release_selector(RELEASE))
    assert after["metadata"]["uid"] == pod["metadata"]["uid"]
    assert restarts(after) == 0
    # `helm test` reads the tokens from the same Secret: it follows the rotation too.
    assert "OK: iris-classifier 1.0.0 answered over gRPC" in helm_test(RELEASE, namespace)
