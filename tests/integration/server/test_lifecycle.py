"""Readiness states, bad bundles that must not crash-loop, overload (429), deadline (504) and SIGTERM
with requests in flight, against real `model-server serve` processes where it matters."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from model_server.http.app import create_app
from model_server.metrics import Metrics
from model_server.runtime.lifecycle import ModelRuntime
from model_server.settings import Settings
from support.app import app_client
from support.paths import TEST_MODELS
from support.serverproc import ServerProcess, http_get, start_server

MODELS = TEST_MODELS
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SLOW_ENV = {"PYTHONPATH": str(MODELS), "TRUSTED_TYPES": "slowmodel.SlowRegressor"}


def post(srv: ServerProcess, body: object, path: str = "/predict", timeout: float = 30) -> tuple[int, dict]:
    req = urllib.request.Request(
        srv.url(path), json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with NO_PROXY.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metric(srv: ServerProcess, line_start: str) -> float:
    text = http_get(srv.url("/metrics"))[1].decode()
    for line in text.splitlines():
        if line.startswith(line_start + " ") or line.startswith(line_start + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def in_background(fn, n: int) -> tuple[list[threading.Thread], list[object]]:
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(fn())) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


ROW = {"x0": 1.0, "x1": 2.0}


# ---- readiness in-process -----------------------------------------------------------------------


def test_live_at_once_ready_only_after_load(iris_bundle: Path) -> None:
    settings = Settings()
    metrics = Metrics()
    runtime = ModelRuntime(settings, metrics, iris_bundle)
    app = create_app(settings, metrics=metrics, runtime=runtime)  # the test drives the loading
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert (r.status_code, r.json()) == (503, {"status": "loading", "reason": "the model is loading"})
        assert client.get("/v2/health/ready").status_code == 503
        r = client.post("/predict", json={"sepal_length": 1})
        assert r.status_code == 503 and "not ready" in r.json()["error"]
        assert r.headers["retry-after"] == "1"
        runtime.load()
        assert client.get("/readyz").status_code == 200
        assert client.get("/v2/health/ready").json() == {"ready": True}
        runtime.begin_drain()
        r = client.get("/readyz")
        assert (r.status_code, r.json()["status"]) == (503, "draining")
    runtime.close()


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"model_name": "churn"}, "the bundle is model 'iris-classifier' but MODEL_NAME expects 'churn'"),
        ({"model_version": "2.0.0"}, "MODEL_VERSION expects '2.0.0'"),
    ],
)
def test_unexpected_model_is_never_ready(iris_bundle: Path, settings: dict, reason: str) -> None:
    with app_client(iris_bundle, **settings) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["status"] == "failed" and reason in r.json()["reason"]
        assert client.get("/metrics").text.count("model_server_model_ready 0.0") == 1


def test_untrusted_bundle_says_which_types(slow_bundle: Path) -> None:
    with app_client(slow_bundle) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert "not trusted: slowmodel.SlowRegressor" in r.json()["reason"]
        assert "TRUSTED_TYPES" in r.json()["reason"]


# ---- real processes -----------------------------------------------------------------------------


def test_bad_bundle_keeps_the_process_alive_and_says_why(tmp_path: Path, iris_bundle: Path) -> None:
    broken = tmp_path / "iris"
    broken.mkdir()
    (broken / "metadata.json").write_bytes((iris_bundle / "metadata.json").read_bytes())
    (broken / "model.skops").write_bytes(b"truncated")
    with start_server(broken, wait="live") as srv:
        time.sleep(1.0)  # long enough for the loader to have failed
        assert srv.proc.poll() is None, srv.log()
        assert http_get(srv.url("/healthz"))[0] == 200
        status, body = http_get(srv.url("/readyz"))
        reason = json.loads(body)["reason"]
        assert status == 503 and "checksum mismatch" in reason and "re-package or re-download" in reason
        errors = [line for line in srv.log_lines() if line["level"] == "error"]
        assert any(
            "model not loaded" in line["msg"] and "checksum mismatch" in line["msg"] for line in errors
        )
        assert srv.stop() == 0


def test_overload_429_and_deadline_504_are_counted(slow_bundle: Path) -> None:
    env = {**SLOW_ENV, "MAX_IN_FLIGHT": "2", "REQUEST_TIMEOUT_SECONDS": "1.5"}
    with start_server(slow_bundle, env=env) as srv:
        threads, results = in_background(lambda: post(srv, ROW), 2)
        wait_until(lambda: metric(srv, "model_server_requests_in_flight") == 2)
        status, body = post(srv, ROW)
        assert status == 429
        assert "limit of 2 concurrent prediction requests (MAX_IN_FLIGHT)" in body["error"]
        assert http_get(srv.url("/healthz"))[0] == 200  # health never waits behind the model
        for t in threads:
            t.join(30)
        assert [r[0] for r in results] == [504, 504]
        assert "REQUEST_TIMEOUT_SECONDS" in results[0][1]["error"]
        assert metric(srv, 'model_server_prediction_errors_total{kind="overloaded"}') == 1
        assert metric(srv, 'model_server_prediction_errors_total{kind="deadline_exceeded"}') == 2
        assert metric(srv, 'model_server_requests_total{code="429",protocol="named",route="/predict"}') == 1


def test_sigterm_with_requests_in_flight(slow_bundle: Path) -> None:
    env = {**SLOW_ENV, "SHUTDOWN_GRACE_SECONDS": "15"}
    with start_server(slow_bundle, env=env) as srv:
        threads, results = in_background(lambda: post(srv, ROW), 3)
        wait_until(lambda: metric(srv, "model_server_requests_in_flight") == 3)
        start = time.monotonic()
        os.kill(srv.pid, signal.SIGTERM)
        wait_until(lambda: http_get(srv.url("/readyz"))[0] == 503, timeout=2)
        body = http_get(srv.url("/readyz"))[1]
        assert json.loads(body) == {"status": "draining", "reason": "the server is shutting down"}
        assert http_get(srv.url("/healthz"))[0] == 200
        for t in threads:
            t.join(30)
        assert [r[0] for r in results] == [200, 200, 200], results
        code = srv.proc.wait(15)
        assert code == 0, srv.log()
        assert time.monotonic() - start < 15
    messages = [line["msg"] for line in srv.log_lines()]
    assert "shutdown requested: not ready any more, finishing in-flight requests" in messages


def test_sigterm_under_kept_alive_load_loses_no_request(iris_bundle: Path) -> None:
    """Clients keeping their connection alive send without pause while SIGTERM arrives. None may lose a
    request: the server keeps serving, every answer after the signal says `Connection: close` (and
    none before it), the client's next request on a new connection is served too, and once the clients
    have moved away (here: stopped after three such answers) the process exits 0."""
    clients, closes_wanted = 4, 3
    env = {"SHUTDOWN_GRACE_SECONDS": "15", "DRAIN_IDLE_SECONDS": "1"}
    body = json.dumps(
        {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
    ).encode()
    headers = {"Content-Type": "application/json"}
    signalled = threading.Event()
    # Per client, one (answered before the signal, status, said close) per answer, and any transport error.
    answers: list[list[tuple[bool, int, bool]]] = [[] for _ in range(clients)]
    errors: list[str] = []

    def client(mine: list[tuple[bool, int, bool]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        closes = 0
        while closes < closes_wanted:
            try:
                # http.client reuses the connection, and opens a new one after an answer that closed it.
                conn.request("POST", "/predict", body, headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as e:
                errors.append(f"{type(e).__name__}: {e}")
                return
            before = not signalled.is_set()  # answered before the signal was sent
            close = (resp.getheader("connection") or "").lower() == "close"
            closes += close
            mine.append((before, resp.status, close))
        conn.close()

    with start_server(iris_bundle, env=env) as srv:
        threads = [threading.Thread(target=client, args=(mine,)) for mine in answers]
        for t in threads:
            t.start()
        wait_until(lambda: all(len(mine) >= 50 for mine in answers) or bool(errors))
        signalled.set()
        os.kill(srv.pid, signal.SIGTERM)
        for t in threads:
            t.join(30)
        code = srv.proc.wait(15)
    assert errors == [], errors
    assert code == 0, srv.log()
    for mine in answers:
        assert {status for _, status, _ in mine} == {200}, mine
        # Kept alive until the signal, then closed after every answer: once closing, always closing.
        said_close = [close for _, _, close in mine]
        first = said_close.index(True)
        assert said_close == [False] * first + [True] * closes_wanted, said_close
        assert not any(close for before, _, close in mine if before), mine
        assert first >= 50
    messages = [line["msg"] for line in srv.log_lines()]
    assert "grace period over with connections still in use" not in messages


def test_request_log_lines(iris_bundle: Path) -> None:
    with start_server(iris_bundle) as srv:
        # Values chosen so they cannot appear by chance elsewhere in a log line (durations have
        # three decimals, request ids are hex).
        row = {"sepal_length": 5.123457, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
        req = urllib.request.Request(
            srv.url("/predict"),
            json.dumps(row).encode(),
            {"Content-Type": "application/json", "X-Request-ID": "trace-42"},
        )
        with NO_PROXY.open(req, timeout=10) as resp:
            assert resp.headers["X-Request-ID"] == "trace-42"
        post(srv, {"sepal_length": "body-marker-qz"})
    requests = [line for line in srv.log_lines() if line.get("msg") == "request"]
    ok = next(line for line in requests if line["request_id"] == "trace-42")
    assert ok["status"] == 200 and ok["path"] == "/predict" and ok["rows"] == 1 and ok["level"] == "info"
    bad = next(line for line in requests if line["status"] == 400)
    assert "missing feature(s)" in bad["error"]
    # No bodies unless LOG_REQUEST_BODIES.
    assert "body-marker-qz" not in srv.log() and "5.123457" not in srv.log()


def test_request_bodies_are_logged_only_when_enabled(
    iris_bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    for enabled in (False, True):
        caplog.clear()
        with app_client(iris_bundle, log_request_bodies=enabled) as client, caplog.at_level("INFO"):
            client.post("/predict", json=body)
        lines = [r for r in caplog.records if r.getMessage() == "request" and r.path == "/predict"]
        assert len(lines) == 1
        if enabled:
            assert '"sepal_length":5.1' in lines[0].body.replace(" ", "")
        else:
            assert not hasattr(lines[0], "body")
