"""Bearer tokens end to end on a real server process: every prediction endpoint refuses without a
valid token (the same 401 whatever was wrong), probes and metrics stay open, and a rotated Secret
takes effect without a restart."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.secrets import NEW, OLD, secret_volume
from support.serverproc import ServerProcess, http_get, start_server, wait_until

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
PREDICTIONS = {
    "/predict": ROW,
    "/v1/models/iris-classifier:predict": {"instances": [[5.1, 3.5, 1.4, 0.2]]},
    "/v2/models/iris-classifier/infer": {
        "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]
    },
    "/v2/models/iris-classifier/versions/1.0.0/infer": {
        "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]
    },
}
OPEN = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/iris-classifier",
]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(
    srv: ServerProcess, path: str, doc: object, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        srv.url(path), json.dumps(doc).encode(), {"Content-Type": "application/json", **headers}
    )
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auth-secret")


@pytest.fixture(scope="module")
def server(iris_bundle: Path, secret: Path) -> Iterator[ServerProcess]:
    link = secret_volume(secret, "v1", f"# issued to the checkout team\n{OLD}\n")
    with start_server(iris_bundle, env={"AUTH_TOKENS_FILE": str(link)}) as srv:
        yield srv


WRONG = {
    "no header": {},
    "empty bearer": {"Authorization": "Bearer "},
    "other scheme": {"Authorization": f"Basic {OLD}"},
    "wrong token": {"Authorization": "Bearer not-the-token-0123456789"},
    "token prefix": {"Authorization": f"Bearer {OLD[:-2]}"},
    "two tokens": {"Authorization": f"Bearer {OLD} {OLD}"},
}


@pytest.mark.parametrize("path", list(PREDICTIONS))
def test_predictions_need_a_valid_token(server: ServerProcess, path: str) -> None:
    bodies = set()
    for why, headers in WRONG.items():
        status, resp_headers, body = post(server, path, PREDICTIONS[path], headers)
        assert status == 401, f"{why}: {status} {body!r}"
        assert resp_headers.get("www-authenticate") == 'Bearer realm="model-server"', why
        bodies.add(body)
    assert len(bodies) == 1, f"the 401 bodies differ by reason: {bodies}"
    assert "Authorization: Bearer" in json.loads(bodies.pop())["error"]
    status, _, body = post(server, path, PREDICTIONS[path], {"Authorization": f"Bearer {OLD}"})
    assert status == 200, body


def test_unauthenticated_callers_learn_nothing_else(server: ServerProcess) -> None:
    """Without a token, a body the server would refuse for its content type or size still gets 401."""
    req = urllib.request.Request(server.url("/predict"), b"x" * 100, {"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as err:
        _OPENER.open(req, timeout=10)
    assert err.value.code == 401


@pytest.mark.parametrize("path", OPEN)
def test_probes_metrics_and_metadata_stay_open(server: ServerProcess, path: str) -> None:
    assert http_get(server.url(path))[0] == 200


def test_a_rotated_secret_applies_without_restart_and_tokens_never_reach_the_log(
    server: ServerProcess, secret: Path
) -> None:
    pid = server.proc.pid
    secret_volume(secret, "v2", f"{OLD}\n{NEW}\n")  # rotation step 1: both valid
    assert post(server, "/predict", ROW, {"Authorization": f"Bearer {NEW}"})[0] == 200
    assert post(server, "/predict", ROW, {"Authorization": f"Bearer {OLD}"})[0] == 200
    secret_volume(secret, "v3", f"{NEW}\n")  # step 2: the old token retired
    assert post(server, "/predict", ROW, {"Authorization": f"Bearer {OLD}"})[0] == 401
    assert post(server, "/predict", ROW, {"Authorization": f"Bearer {NEW}"})[0] == 200
    assert server.proc.pid == pid and server.proc.poll() is None
    metrics = http_get(server.url("/metrics"))[1].decode()
    assert 'model_server_prediction_errors_total{kind="unauthorized"}' in metrics
    log = server.log()
    assert OLD not in log and NEW not in log
    # Info lines reach stdout in batches (LOG_FLUSH_INTERVAL_MS): wait for the last reload's line.
    wait_until(
        lambda: sum(1 for line in server.log_lines() if line.get("msg") == "auth tokens loaded") >= 3,
        5,
        "three 'auth tokens loaded' lines",
    )
