"""The gRPC listener of a real `model-server serve` process: every method, health, the same metrics and
log line as HTTP, hostile messages (each a clear status, the server still serving), the limits, bearer
tokens, and the drain on SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2
from model_server.auth import MESSAGE as AUTH_MESSAGE
from model_server.errors import ECHO_CHARS, MESSAGE_CHARS
from model_server.protocols.proto import grpc_predict_v2_pb2 as pb
from support.grpccalls import call, grpc_channel, infer, infer_request
from support.paths import TEST_MODELS
from support.secrets import NEW, secret_volume
from support.serverproc import ServerProcess, http_get, metric, start_server, wait_until

IRIS = "iris-classifier"
ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
INFER_ROUTE = "/inference.GRPCInferenceService/ModelInfer"
SLOW_ENV = {"PYTHONPATH": str(TEST_MODELS), "TRUSTED_TYPES": "slowmodel.SlowRegressor"}
# Over this the handler answers with the shared message; gRPC itself drops messages over twice it.
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def iris(iris_bundle: Path) -> Iterator[ServerProcess]:
    env = {"GRPC_MAX_MESSAGE_BYTES": str(LIMIT), "MAX_REQUEST_ROWS": "100"}
    with start_server(iris_bundle, env=env) as srv:
        yield srv


def health(channel: grpc.Channel, service: str = "") -> tuple[grpc.StatusCode, int | None]:
    code, _, reply = call(
        channel,
        "Check",
        health_pb2.HealthCheckRequest(service=service).SerializeToString(),
        service="grpc.health.v1.Health",
    )
    return code, health_pb2.HealthCheckResponse.FromString(
        reply
    ).status if code == grpc.StatusCode.OK else None


def test_every_method_of_the_service(iris: ServerProcess) -> None:
    with grpc_channel(iris) as ch:
        ok = grpc.StatusCode.OK
        code, _, reply = call(ch, "ServerLive", b"")
        assert code == ok and pb.ServerLiveResponse.FromString(reply).live
        code, _, reply = call(ch, "ServerReady", b"")
        assert code == ok and pb.ServerReadyResponse.FromString(reply).ready
        for name, version, ready in (
            (IRIS, "", True),
            (IRIS, "1.0.0", True),
            (IRIS, "9", False),
            ("x", "", False),
        ):
            body = pb.ModelReadyRequest(name=name, version=version).SerializeToString()
            code, _, reply = call(ch, "ModelReady", body)
            assert code == ok and pb.ModelReadyResponse.FromString(reply).ready is ready, (name, version)
        code, _, reply = call(ch, "ServerMetadata", b"")
        assert pb.ServerMetadataResponse.FromString(reply).name == "model-server"
        code, _, reply = call(ch, "ModelMetadata", pb.ModelMetadataRequest(name=IRIS).SerializeToString())
        meta = pb.ModelMetadataResponse.FromString(reply)
        assert [t.name for t in meta.inputs] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        code, details, _ = call(ch, "ModelMetadata", pb.ModelMetadataRequest(name="nope").SerializeToString())
        assert code == grpc.StatusCode.NOT_FOUND and "model 'nope' is not served here" in details

        for raw in (False, True):
            code, _, resp = infer(ch, infer_request(IRIS, ROWS, raw=raw, id="req-1"))
            assert code == ok and resp is not None
            assert resp.id == "req-1" and resp.model_version == "1.0.0"
            if raw:
                assert [o.name for o in resp.outputs] == ["predictions"] and len(
                    resp.raw_output_contents
                ) == 1
            else:
                assert list(resp.outputs[0].contents.bytes_contents) == [b"setosa", b"virginica"]


def test_health_service_and_its_names(iris: ServerProcess) -> None:
    with grpc_channel(iris) as ch:
        assert health(ch) == (grpc.StatusCode.OK, health_pb2.HealthCheckResponse.SERVING)
        assert health(ch, "inference.GRPCInferenceService")[1] == health_pb2.HealthCheckResponse.SERVING
        assert health(ch, "nope")[0] == grpc.StatusCode.NOT_FOUND


def test_metrics_and_the_request_log_line(iris: ServerProcess) -> None:
    series = f'model_server_requests_total{{code="200",protocol="grpc",route="{INFER_ROUTE}"}}'
    before = metric(iris, series)
    with grpc_channel(iris) as ch:
        code, _, _ = call(
            ch,
            "ModelInfer",
            infer_request(IRIS, ROWS).SerializeToString(),
            metadata=[("x-request-id", "trace-42")],
        )
        assert code == grpc.StatusCode.OK
        call(ch, "ModelInfer", infer_request("nope", ROWS).SerializeToString())
    assert metric(iris, series) == before + 1
    assert (
        metric(iris, f'model_server_requests_total{{code="404",protocol="grpc",route="{INFER_ROUTE}"}}') >= 1
    )
    assert metric(iris, 'model_server_prediction_errors_total{kind="not_found"}') >= 1
    assert metric(iris, 'model_server_request_duration_seconds_count{protocol="grpc"') >= 1
    wait_until(
        lambda: any(line.get("request_id") == "trace-42" for line in iris.log_lines()), 5, "the log line"
    )
    line = next(line for line in iris.log_lines() if line.get("request_id") == "trace-42")
    assert line["msg"] == "request" and line["logger"] == "model_server.access"
    assert (line["protocol"], line["path"], line["status"], line["grpc_status"], line["rows"]) == (
        "grpc",
        INFER_ROUTE,
        200,
        "OK",
        2,
    )


def _tensor(datatype: str, shape: list[int], **contents: object) -> bytes:
    msg = pb.ModelInferRequest(model_name=IRIS)
    msg.inputs.add(name="input", datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents))
    return msg.SerializeToString()


HOSTILE = [
    (
        "not a message",
        b"\x0a\xff\xff\xff\xff\x0f",
        grpc.StatusCode.INVALID_ARGUMENT,
        "not a valid ModelInferRequest",
    ),
    ("garbage", bytes(range(256)) * 4, grpc.StatusCode.INVALID_ARGUMENT, "not a valid ModelInferRequest"),
    ("empty", b"", grpc.StatusCode.NOT_FOUND, "model '' is not served here"),
    (
        "no inputs",
        pb.ModelInferRequest(model_name=IRIS).SerializeToString(),
        grpc.StatusCode.INVALID_ARGUMENT,
        "non-empty",
    ),
    (
        "wrong width",
        _tensor("FP64", [1, 3], fp64_contents=[1, 2, 3]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "[rows, 4]",
    ),
    (
        "count",
        _tensor("FP64", [2, 4], fp64_contents=[1, 2, 3]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "its shape says 8",
    ),
    (
        "wrong field",
        _tensor("FP64", [1, 4], int64_contents=[1, 2, 3, 4]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "fp64_contents",
    ),
    (
        "datatype",
        _tensor("FP8", [1, 4], fp64_contents=[1, 2, 3, 4]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "supported",
    ),
    (
        "strings",
        _tensor("BYTES", [1, 4], bytes_contents=[b"a"] * 4),
        grpc.StatusCode.INVALID_ARGUMENT,
        "BYTES",
    ),
    (
        "infinite",
        _tensor("FP64", [1, 4], fp64_contents=[1, 2, float("inf"), 4]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "infinite values are not accepted",
    ),
    (
        "huge shape",
        _tensor("FP64", [2**40, 2**20], fp64_contents=[1]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "shape says",
    ),
    (
        "too many rows",
        _tensor("FP64", [200, 4], fp64_contents=[1.0] * 800),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "over the limit of 100 rows per request (MAX_REQUEST_ROWS)",
    ),
    (
        "version",
        infer_request(IRIS, ROWS, model_version="2").SerializeToString(),
        grpc.StatusCode.NOT_FOUND,
        "no version '2'",
    ),
]


@pytest.mark.parametrize(("body", "code", "message"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_messages_get_a_clear_status_and_the_server_keeps_serving(
    iris: ServerProcess, body: bytes, code: grpc.StatusCode, message: str
) -> None:
    with grpc_channel(iris) as ch:
        got, details, _ = call(ch, "ModelInfer", body)
        assert (got, message in details) == (code, True), details
        assert got not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
        assert infer(ch, infer_request(IRIS, ROWS))[0] == grpc.StatusCode.OK
    assert http_get(iris.url("/healthz"))[0] == 200


def _named(model: str = IRIS, version: str = "", name: str = "input", datatype: str = "FP64") -> bytes:
    msg = pb.ModelInferRequest(model_name=model, model_version=version)
    msg.inputs.add(
        name=name,
        datatype=datatype,
        shape=[1, 4],
        contents=pb.InferTensorContents(fp64_contents=[1, 2, 3, 4]),
    )
    return msg.SerializeToString()


BIG = "x" * (LIMIT // 2)  # a name or value far longer than any message may quote, inside the message limit
ECHOES = {
    "model name": (_named(model=BIG), grpc.StatusCode.NOT_FOUND, "is not served here"),
    "model version": (_named(version=BIG), grpc.StatusCode.NOT_FOUND, "no version"),
    "datatype": (_named(datatype=BIG), grpc.StatusCode.INVALID_ARGUMENT, "supported"),
}


@pytest.mark.parametrize("case", list(ECHOES))
def test_what_the_client_sent_is_quoted_bounded_in_the_status_message(iris: ServerProcess, case: str) -> None:
    body, code, names_problem = ECHOES[case]
    with grpc_channel(iris) as ch:
        got, details, _ = call(ch, "ModelInfer", body)
        assert got == code and names_problem in details, details
        # The client's 32 KiB value appears abbreviated to ECHO_CHARS, never whole.
        assert len(details) <= MESSAGE_CHARS and "x" * (ECHO_CHARS + 1) not in details, details
        assert infer(ch, infer_request(IRIS, ROWS))[0] == grpc.StatusCode.OK

    def logged() -> list[str]:  # the request's log line quotes the same abbreviation
        return [ln for ln in iris.log().splitlines() if '"protocol":"grpc"' in ln and "x" * 20 in ln]

    wait_until(logged, what="the request's log line")
    assert not [ln for ln in logged() if "x" * (ECHO_CHARS + 1) in ln]


def test_oversized_messages_are_resource_exhausted(iris: ServerProcess) -> None:
    big = infer_request(IRIS, np.ones((LIMIT // 32 + 100, 4))).SerializeToString()
    assert LIMIT < len(big) < 2 * LIMIT
    with grpc_channel(iris) as ch:
        code, details, _ = call(ch, "ModelInfer", big)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"over the limit of {LIMIT} bytes (GRPC_MAX_MESSAGE_BYTES)" in details
        # Past twice the limit gRPC refuses the message before the handler sees it, in its own words.
        code, details, _ = call(ch, "ModelInfer", b"\x0a" + b"\x00" * (3 * LIMIT))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
        assert infer(ch, infer_request(IRIS, ROWS))[0] == grpc.StatusCode.OK


def test_a_deadline_already_past_and_unknown_methods(iris: ServerProcess) -> None:
    with grpc_channel(iris) as ch:
        assert call(ch, "ModelInfer", infer_request(IRIS, ROWS).SerializeToString(), timeout=0)[0] == (
            grpc.StatusCode.DEADLINE_EXCEEDED
        )
        assert call(ch, "RepositoryModelLoad", b"")[0] == grpc.StatusCode.UNIMPLEMENTED
        assert infer(ch, infer_request(IRIS, ROWS))[0] == grpc.StatusCode.OK


def test_bearer_tokens_in_the_authorization_metadata(iris_bundle: Path, tmp_path: Path) -> None:
    tokens = secret_volume(tmp_path, "v1", f"{NEW}\n")
    with start_server(iris_bundle, env={"AUTH_TOKENS_FILE": str(tokens)}) as srv, grpc_channel(srv) as ch:
        body = infer_request(IRIS, ROWS).SerializeToString()
        for metadata in ([], [("authorization", "Bearer wrong-token-0123456789")], [("authorization", NEW)]):
            code, details, _ = call(ch, "ModelInfer", body, metadata=metadata)
            assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, AUTH_MESSAGE), metadata
        assert (
            call(ch, "ModelInfer", body, metadata=[("authorization", f"Bearer {NEW}")])[0]
            == grpc.StatusCode.OK
        )
        # Health and metadata stay open, as over HTTP.
        assert health(ch)[1] == health_pb2.HealthCheckResponse.SERVING
        assert (
            call(ch, "ModelMetadata", pb.ModelMetadataRequest(name=IRIS).SerializeToString())[0]
            == grpc.StatusCode.OK
        )
        assert metric(srv, 'model_server_prediction_errors_total{kind="unauthorized"}') == 3


def _in_background(fn, n: int) -> tuple[list[threading.Thread], list]:
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(fn())) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


SLOW_ROW = np.array([[1.0, 2.0]])


def test_in_flight_limit_and_deadlines(slow_bundle: Path) -> None:
    env = {**SLOW_ENV, "MAX_IN_FLIGHT": "2", "REQUEST_TIMEOUT_SECONDS": "1.5"}
    with start_server(slow_bundle, env=env) as srv, grpc_channel(srv) as ch:
        body = infer_request("slow", SLOW_ROW).SerializeToString()
        threads, results = _in_background(lambda: call(ch, "ModelInfer", body, timeout=30), 2)
        wait_until(lambda: metric(srv, "model_server_requests_in_flight") == 2, what="2 calls in flight")
        code, details, _ = call(ch, "ModelInfer", body)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "limit of 2 concurrent prediction requests (MAX_IN_FLIGHT)" in details
        assert health(ch)[1] == health_pb2.HealthCheckResponse.SERVING  # health never waits behind the model
        for t in threads:
            t.join(30)
        assert [r[0] for r in results] == [grpc.StatusCode.DEADLINE_EXCEEDED] * 2
        assert "1.5 s (REQUEST_TIMEOUT_SECONDS)" in results[0][1]
        wait_until(lambda: metric(srv, "model_server_requests_in_flight") == 0, what="the slow calls to end")
        # The client's own deadline, shorter than REQUEST_TIMEOUT_SECONDS, is honoured.
        start = time.monotonic()
        assert call(ch, "ModelInfer", body, timeout=0.5)[0] == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - start < 1.4
        assert metric(srv, 'model_server_prediction_errors_total{kind="overloaded"}') == 1
        assert metric(srv, 'model_server_requests_total{code="429",protocol="grpc"') == 1


def test_sigterm_drains_grpc(slow_bundle: Path) -> None:
    env = {**SLOW_ENV, "SHUTDOWN_GRACE_SECONDS": "15"}
    with start_server(slow_bundle, env=env) as srv, grpc_channel(srv) as ch:
        body = infer_request("slow", SLOW_ROW).SerializeToString()
        threads, results = _in_background(lambda: call(ch, "ModelInfer", body, timeout=30), 2)
        wait_until(lambda: metric(srv, "model_server_requests_in_flight") == 2, what="2 calls in flight")
        os.kill(srv.pid, signal.SIGTERM)
        wait_until(lambda: health(ch)[1] == health_pb2.HealthCheckResponse.NOT_SERVING, 2, "NOT_SERVING")
        code, details, _ = call(ch, "ModelInfer", body)
        assert (code, details) == (
            grpc.StatusCode.UNAVAILABLE,
            "the model is not ready: the server is shutting down",
        )
        code, _, reply = call(ch, "ServerReady", b"")
        assert code == grpc.StatusCode.OK and not pb.ServerReadyResponse.FromString(reply).ready
        for t in threads:
            t.join(30)
        assert [r[0] for r in results] == [grpc.StatusCode.OK] * 2, results
        assert srv.proc.wait(15) == 0, srv.log()


def test_grpc_off_and_a_taken_port(iris_bundle: Path) -> None:
    with start_server(iris_bundle, env={"GRPC_ENABLED": "false"}) as srv, grpc_channel(srv) as ch:
        assert call(ch, "ServerLive", b"", timeout=2)[0] == grpc.StatusCode.UNAVAILABLE
        taken = srv.port  # the HTTP port of a running server
        with start_server(iris_bundle, env={"GRPC_PORT": str(taken)}, wait=None) as second:
            assert second.proc.wait(30) == 1
        assert f"cannot listen on 127.0.0.1:{taken} (GRPC_PORT)" in second.log()
