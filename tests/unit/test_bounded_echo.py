"""Error messages quote a bounded amount of what the client sent, in every protocol.

A hostile client names thousands of unknown fields, or one field with a name of a megabyte, or sends a
megabyte where a datatype, a shape, a model name or a content type goes. Each request still gets its
4xx naming the problem (the first few names and how many more), but the answer, and the request's
log line, hold at most MESSAGE_CHARS characters of message (errors.py), each quoted value at most
ECHO_CHARS, and the logged path at most LOGGED_PATH_CHARS.

The cases are one table, each a protocol and a request sent through that protocol's HTTP transport.
The gRPC transport needs its own listener, so its cases (a model name, a version and a datatype of
32 KiB) run against a real process in tests/integration/grpc/test_grpc_server.py, with the same bounds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from model_server.errors import ECHO_CHARS, ECHO_NAMES, MESSAGE_CHARS
from model_server.http.middleware import LOGGED_PATH_CHARS
from support.app import app_client

MEGA = "x" * 2**20  # one name or value of a megabyte
MANY = 5000  # unknown names in one request
IRIS = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
V2 = "/v2/models/iris-classifier/infer"
V1 = "/v1/models/iris-classifier:predict"
JSON = {"Content-Type": "application/json"}


def many(prefix: str = "unknown_") -> dict[str, int]:
    return {f"{prefix}{i:05d}": i for i in range(MANY)}


def tensor(
    name: str, data: list[Any], datatype: str = "FP64", shape: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "datatype": datatype,
        "shape": shape if shape is not None else [len(data)],
        "data": data,
    }


@dataclass(frozen=True)
class Answer:
    status: int  # HTTP status (a gRPC transport maps its status code to the HTTP one errors.py names)
    message: str  # what the client reads
    request_id: str  # to find the request's log line


@dataclass(frozen=True)
class Hostile:
    id: str
    protocol: str  # named | v1 | v2 (| grpc)
    send: Callable[[TestClient], Answer]
    status: int
    names_problem: str  # the part of the message that says what is wrong
    many_names: bool = False  # the message lists the first ECHO_NAMES names and "and N more"


def http(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> Callable[[TestClient], Answer]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""

    def send(client: TestClient) -> Answer:
        r = client.request(method, path, content=raw, headers=JSON if headers is None else headers)
        return Answer(r.status_code, r.json()["error"], r.headers["x-request-id"])

    return send


CASES = [
    # ---- named features, POST /predict ----
    Hostile(
        "named-many-fields",
        "named",
        http("POST", "/predict", IRIS | many()),
        400,
        "unknown feature(s): unknown_00000",
        True,
    ),
    Hostile(
        "named-megabyte-field",
        "named",
        http("POST", "/predict", IRIS | {MEGA: 1}),
        400,
        "unknown feature(s): xxx",
    ),
    Hostile(
        "named-megabyte-value",
        "named",
        http("POST", "/predict", IRIS | {"sepal_length": MEGA}),
        400,
        "feature 'sepal_length' at row 0 must be a number, got string 'xxx",
    ),
    Hostile(
        "named-many-top-level",
        "named",
        http("POST", "/predict", {"instances": [IRIS]} | many()),
        400,
        "no other top-level keys are allowed, got: unknown_00000",
        True,
    ),
    Hostile(
        "named-megabyte-query",
        "named",
        http("POST", "/predict?probabilities=" + "y" * 30_000, IRIS),
        400,
        "query parameter probabilities='yyy",
    ),
    Hostile(
        "named-megabyte-content-type",
        "named",
        http("POST", "/predict", IRIS, {"Content-Type": "text/" + "z" * 60_000}),
        415,
        "content type text/zzz",
    ),
    # ---- KServe V1 ----
    Hostile(
        "v1-many-top-level",
        "v1",
        http("POST", V1, {"instances": [[5.1, 3.5, 1.4, 0.2]]} | many()),
        400,
        "unknown top-level key(s): unknown_00000",
        True,
    ),
    Hostile(
        "v1-many-fields",
        "v1",
        http("POST", V1, {"instances": [IRIS | many()]}),
        400,
        "row 0: unknown feature(s): unknown_00000",
        True,
    ),
    Hostile(
        "v1-megabyte-field",
        "v1",
        http("POST", V1, {"instances": [IRIS | {MEGA: 1}]}),
        400,
        "unknown feature(s): xxx",
    ),
    Hostile(
        "v1-megabyte-model",
        "v1",
        http("POST", f"/v1/models/{'m' * 30_000}:predict", {"instances": [[5.1, 3.5, 1.4, 0.2]]}),
        404,
        "is not served here",
    ),
    # ---- Open Inference Protocol, REST ----
    Hostile(
        "v2-many-fields",
        "v2",
        http("POST", V2, {"inputs": [tensor("x", [1.0] * 4, shape=[1, 4])]} | many()),
        400,
        "unknown field(s) in the inference request: unknown_00000",
        True,
    ),
    Hostile(
        "v2-many-inputs",
        "v2",
        http("POST", V2, {"inputs": [tensor(f"unknown_{i:05d}", [1.0]) for i in range(MANY)]}),
        400,
        "unknown feature(s): unknown_00000",
        True,
    ),
    Hostile(
        "v2-megabyte-input-name",
        "v2",
        http("POST", V2, {"inputs": [tensor(MEGA, [1.0] * 4, datatype="FP6", shape=[1, 4])]}),
        400,
        "input 'xxx",
    ),
    Hostile(
        "v2-megabyte-datatype",
        "v2",
        http("POST", V2, {"inputs": [tensor("x", [1.0] * 4, datatype=MEGA, shape=[1, 4])]}),
        400,
        "has datatype 'xxx",
    ),
    Hostile(
        "v2-megabyte-shape",
        "v2",
        http("POST", V2, {"inputs": [tensor("x", [1.0], shape=[1, MEGA])]}),
        400,
        'needs "shape": a list of non-negative integers, got [1, \'xxx',
    ),
    Hostile(
        "v2-megabyte-value",
        "v2",
        http("POST", V2, {"inputs": [tensor("x", [MEGA] * 4, shape=[1, 4])]}),
        400,
        "every value must be a number, got string 'xxx",
    ),
    Hostile(
        "v2-megabyte-output",
        "v2",
        http("POST", V2, {"inputs": [tensor("x", [1.0] * 4, shape=[1, 4])], "outputs": [{"name": MEGA}]}),
        400,
        "unknown output 'xxx",
    ),
    Hostile(
        "v2-megabyte-input-keys",
        "v2",
        http("POST", V2, {"inputs": [tensor("x", [1.0] * 4, shape=[1, 4]) | many()]}),
        400,
        "input 'x' has unknown field(s): unknown_00000",
        True,
    ),
    Hostile(
        "v2-megabyte-model",
        "v2",
        http("POST", f"/v2/models/{'m' * 30_000}/infer", {"inputs": [tensor("x", [1.0] * 4, shape=[1, 4])]}),
        404,
        "model 'mmm",
    ),
    Hostile(
        "v2-megabyte-version",
        "v2",
        http(
            "POST",
            f"/v2/models/iris-classifier/versions/{'v' * 30_000}/infer",
            {"inputs": [tensor("x", [1.0] * 4, shape=[1, 4])]},
        ),
        404,
        "has no version 'vvv",
    ),
    Hostile(
        "v2-megabyte-header-length",
        "v2",
        http("POST", V2, b"{}", {"Inference-Header-Content-Length": "q" * 60_000}),
        400,
        "Inference-Header-Content-Length must be a byte count, got 'qqq",
    ),
    # ---- any path ----
    Hostile("megabyte-unknown-path", "ops", http("GET", "/" + "p" * 30_000), 404, "no endpoint /ppp"),
]


@pytest.fixture(scope="module")
def iris(iris_bundle: Path) -> Iterator[TestClient]:
    # A body limit above the megabyte names; the default (4 MiB) is too, this only says so.
    with app_client(iris_bundle, max_body_bytes=64 * 2**20) as client:
        yield client


def test_the_cases_cover_every_prediction_protocol() -> None:
    from model_server.http.endpoints import PREDICTION_ROUTES

    assert {r.protocol for r in PREDICTION_ROUTES} <= {c.protocol for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_hostile_request_gets_a_bounded_message_that_names_the_problem(
    iris: TestClient, case: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="model_server.access"):
        answer = case.send(iris)
    assert answer.status == case.status, answer
    assert case.names_problem in answer.message, answer.message
    assert len(answer.message) <= MESSAGE_CHARS
    # No quoted value is longer than ECHO_CHARS: no run of the letter a megabyte name or value
    # repeats is that long in the message.
    assert all(letter * ECHO_CHARS not in answer.message for letter in "xmvpqyz"), answer.message[:200]
    if case.many_names:
        # The first names, in order, then how many more: the client can see which kind of name it was.
        listed = [f"unknown_{i:05d}" for i in range(ECHO_NAMES)]
        assert all(name in answer.message for name in listed), answer.message
        assert f"unknown_{ECHO_NAMES:05d}" not in answer.message
        assert f"and {MANY - ECHO_NAMES} more" in answer.message, answer.message
    # The request's log line holds the same bounded message and a bounded path.
    lines = [r for r in caplog.records if getattr(r, "request_id", None) == answer.request_id]
    assert len(lines) == 1
    line = lines[0]
    assert line.error == answer.message  # type: ignore[attr-defined]
    assert len(line.path) <= LOGGED_PATH_CHARS  # type: ignore[attr-defined]
    assert len(json.dumps(line.__dict__, default=str)) < MESSAGE_CHARS + LOGGED_PATH_CHARS + 2048


def test_the_server_keeps_serving_after_the_hostile_requests(iris: TestClient) -> None:
    r = iris.post("/predict", json=IRIS)
    assert r.status_code == 200 and r.json()["predictions"] == ["setosa"]
