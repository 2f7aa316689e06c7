"""A table of bad requests across /predict, V2 and V1: each gets the right 4xx and a message that
names the problem, and the server keeps answering good requests afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from model_server.metrics import Metrics
from support.app import app_client

# Small limits so that the size and row checks are cheap to trigger.
LIMITS = {"max_body_bytes": 4096, "max_request_rows": 10}
IRIS = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
SALE = {"region": "north", "price": 12.5, "advertising": 800.0, "store_size": 3}
JSON_CT = {"Content-Type": "application/json"}
V2 = "/v2/models/iris-classifier/infer"
V2_SALES = "/v2/models/sales-regressor/infer"
V1 = "/v1/models/iris-classifier:predict"


def js(obj: Any) -> bytes:
    return json.dumps(obj).encode()  # Python's json: writes NaN and Infinity as bare words


def tensor(name: str, shape: list[int], datatype: str, data: Any) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def per_feature(record: dict[str, Any], **override: dict[str, Any]) -> bytes:
    dtypes = {str: "BYTES", int: "INT64", float: "FP64"}
    inputs = [tensor(k, [1], dtypes[type(v)], [v]) for k, v in record.items()]
    inputs = [override.get(t["name"], t) for t in inputs]
    return js({"inputs": inputs})


BINARY_HEADER = js(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]}
)

# (id, model, method, path, headers, body, status, message fragment)
CASES: list[tuple[str, str, str, str, dict[str, str], bytes, int, str]] = [
    # ---- /predict ----
    (
        "text-plain",
        "iris",
        "POST",
        "/predict",
        {"Content-Type": "text/plain"},
        js(IRIS),
        415,
        "content type text/plain is not accepted",
    ),
    ("no-content-type", "iris", "POST", "/predict", {}, js(IRIS), 415, "content type none is not accepted"),
    (
        "form-encoded",
        "iris",
        "POST",
        "/predict",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"a=1",
        415,
        "send Content-Type: application/json",
    ),
    (
        "body-too-large",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        js({"instances": [IRIS] * 60}),
        413,
        "over the limit of 4096 bytes (MAX_BODY_BYTES)",
    ),
    (
        "too-many-rows",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        js({"instances": [IRIS] * 11}),
        413,
        "11 rows, over the limit of 10 rows per request (MAX_REQUEST_ROWS)",
    ),
    (
        "malformed-json",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        b'{"sepal_length": 5.1,',
        400,
        "the body is not valid JSON",
    ),
    ("empty-body", "iris", "POST", "/predict", JSON_CT, b"", 400, "the request body is empty"),
    ("top-level-array", "iris", "POST", "/predict", JSON_CT, js([IRIS]), 400, "must be a JSON object"),
    (
        "missing-feature",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        js({k: v for k, v in IRIS.items() if k != "petal_width"}),
        400,
        "missing feature(s): petal_width",
    ),
    (
        "extra-feature",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        js({**IRIS, "colour": "blue"}),
        400,
        "unknown feature(s): colour",
    ),
    (
        "string-for-number",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        js({**IRIS, "sepal_length": "5.1"}),
        400,
        "feature 'sepal_length' at row 0 must be a number, got string '5.1'",
    ),
    (
        "bool-for-number",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        js({**IRIS, "petal_width": True}),
        400,
        "feature 'petal_width' at row 0 must be a number, got boolean True",
    ),
    # the sales pipeline cannot take missing values (the iris forest can: see test_endpoints)
    (
        "null-value",
        "sales",
        "POST",
        "/predict",
        JSON_CT,
        js({**SALE, "price": None}),
        400,
        "feature 'price' at row 0 is null: this model cannot take missing values",
    ),
    (
        "nan-value",
        "sales",
        "POST",
        "/predict",
        JSON_CT,
        js({"instances": [SALE, {**SALE, "advertising": float("nan")}]}),
        400,
        "feature 'advertising' at row 1 is NaN: this model cannot take missing values",
    ),
    (
        "infinity-value",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        js({**IRIS, "sepal_length": float("inf")}),
        400,
        "feature 'sepal_length' at row 0 is inf: infinite values are not accepted",
    ),
    (
        "overflowing-number",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        b'{"sepal_length": 1e999, "sepal_width": 1, "petal_length": 1, "petal_width": 1}',
        400,
        "feature 'sepal_length' at row 0 is inf",
    ),
    (
        "instances-not-list",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        js({"instances": IRIS}),
        400,
        '"instances" must be a list of records, got object',
    ),
    (
        "instances-empty",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        js({"instances": []}),
        400,
        "the request has no rows",
    ),
    (
        "instances-plus-key",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        js({"instances": [IRIS], "x": 1}),
        400,
        'with "instances", no other top-level keys are allowed, got: x',
    ),
    (
        "instance-not-object",
        "iris",
        "POST",
        "/predict",
        JSON_CT,
        js({"instances": [IRIS, [1, 2, 3, 4]]}),
        400,
        "row 1 must be an object of feature values, got array",
    ),
    (
        "bad-probabilities-flag",
        "iris",
        "POST",
        "/predict?probabilities=maybe",
        JSON_CT,
        js(IRIS),
        400,
        "probabilities='maybe' must be true or false",
    ),
    (
        "regressor-probabilities",
        "sales",
        "POST",
        "/predict?probabilities=true",
        JSON_CT,
        js(SALE),
        400,
        "this regressor has no class probabilities",
    ),
    (
        "string-feature-number",
        "sales",
        "POST",
        "/predict",
        JSON_CT,
        js({**SALE, "region": 3}),
        400,
        "feature 'region' at row 0 must be a string, got number 3",
    ),
    (
        "int-feature-fraction",
        "sales",
        "POST",
        "/predict",
        JSON_CT,
        js({**SALE, "store_size": 2.5}),
        400,
        "feature 'store_size' at row 0 must be an integer, got 2.5",
    ),
    ("get-predict", "iris", "GET", "/predict", {}, b"", 405, "GET is not allowed on /predict"),
    ("unknown-path", "iris", "GET", "/predictions", {}, b"", 404, "no endpoint /predictions"),
    # ---- Open Inference Protocol V2 ----
    (
        "v2-unknown-model",
        "iris",
        "POST",
        "/v2/models/nope/infer",
        JSON_CT,
        js({"inputs": [tensor("x", [1, 4], "FP32", [1, 2, 3, 4])]}),
        404,
        "model 'nope' is not served here: this server serves 'iris-classifier'",
    ),
    (
        "v2-unknown-version",
        "iris",
        "POST",
        "/v2/models/iris-classifier/versions/9.9.9/infer",
        JSON_CT,
        js({"inputs": [tensor("x", [1, 4], "FP32", [1, 2, 3, 4])]}),
        404,
        "has no version '9.9.9'",
    ),
    (
        "v2-unknown-model-metadata",
        "iris",
        "GET",
        "/v2/models/nope",
        {},
        b"",
        404,
        "model 'nope' is not served",
    ),
    (
        "v2-bad-datatype",
        "iris",
        "POST",
        V2,
        JSON_CT,
        js({"inputs": [tensor("x", [1, 4], "FP99", [1, 2, 3, 4])]}),
        400,
        "input 'x' has datatype 'FP99'; supported: BOOL",
    ),
    (
        "v2-count-vs-shape",
        "iris",
        "POST",
        V2,
        JSON_CT,
        js({"inputs": [tensor("x", [1, 4], "FP32", [1, 2, 3])]}),
        400,
        "input 'x' has 3 values, its shape says 4",
    ),
    (
        "v2-wrong-width",
        "iris",
        "POST",
        V2,
        JSON_CT,
        js({"inputs": [tensor("x", [2, 3], "FP64", [1] * 6)]}),
        400,
        "a 2-D input tensor must have shape [rows, 4]",
    ),
    (
        "v2-3d-tensor",
        "iris",
        "POST",
        V2,
        JSON_CT,
        js({"inputs": [tensor("x", [1, 2, 2], "FP64", [1] * 4)]}),
        400,
        "a per-feature input must have shape [rows] or [rows, 1]",
    ),
    (
        "v2-string-in-fp",
        "iris",
        "POST",
        V2,
        JSON_CT,
        js({"inputs": [tensor("x", [1, 4], "FP32", ["a", 2, 3, 4])]}),
        400,
        "input 'x' is FP32: every value must be a number, got string 'a'",
    ),
    (
        "v2-float-in-int",
        "iris",
        "POST",
        V2,
        JSON_CT,
        js({"inputs": [tensor("x", [1, 4], "INT32", [1.5, 2, 3, 4])]}),
        400,
        "input 'x' is INT32: every value must be an integer",
    ),
    (
        "v2-negative-shape",
        "iris",
        "POST",
        V2,
        JSON_CT,
        js({"inputs": [tensor("x", [-1, 4], "FP32", [1] * 4)]}),
        400,
        'needs "shape": a list of non-negative integers',
    ),
    (
        "v2-missing-feature-tensor",
        "iris",
        "POST",
        V2,
        JSON_CT,
        js({"inputs": [tensor(k, [1], "FP64", [v]) for k, v in IRIS.items() if k != "sepal_width"]}),
        400,
        "missing feature(s): sepal_width",
    ),
    (
        "v2-no-inputs",
        "iris",
        "POST",
        V2,
        JSON_CT,
        js({"inputs": []}),
        400,
        '"inputs" must be a non-empty list',
    ),
    (
        "v2-unknown-output",
        "iris",
        "POST",
        V2,
        JSON_CT,
        js({"inputs": [tensor("x", [1, 4], "FP32", [1, 2, 3, 4])], "outputs": [{"name": "logits"}]}),
        400,
        "unknown output 'logits'",
    ),
    (
        "v2-bytes-for-number",
        "iris",
        "POST",
        V2,
        JSON_CT,
        per_feature(IRIS, sepal_length=tensor("sepal_length", [1], "BYTES", ["5.1"])),
        400,
        "feature 'sepal_length' is numeric: send a number datatype",
    ),
    (
        "v2-binary-overrun",
        "iris",
        "POST",
        V2,
        {"Inference-Header-Content-Length": str(len(BINARY_HEADER))},
        BINARY_HEADER + b"\0" * 8,
        400,
        "binary_data_size 16 runs past the 8 bytes of binary data",
    ),
    (
        "v2-text-plain",
        "iris",
        "POST",
        V2,
        {"Content-Type": "text/plain"},
        js({"inputs": [tensor("x", [1, 4], "FP32", [1, 2, 3, 4])]}),
        415,
        "content type text/plain",
    ),
    (
        "v2-2d-for-string-model",
        "sales",
        "POST",
        V2_SALES,
        JSON_CT,
        js({"inputs": [tensor("x", [1, 4], "FP64", [1, 2, 3, 4])]}),
        400,
        "this model has string features (region): send one input tensor per feature",
    ),
    (
        "v2-number-for-string",
        "sales",
        "POST",
        V2_SALES,
        JSON_CT,
        per_feature(SALE, region=tensor("region", [1], "FP64", [1.0])),
        400,
        "feature 'region' is a string feature: send it as BYTES",
    ),
    (
        "v2-too-many-rows",
        "iris",
        "POST",
        V2,
        JSON_CT,
        js({"inputs": [tensor("x", [11, 4], "FP32", [1] * 44)]}),
        413,
        "11 rows, over the limit of 10",
    ),
    # ---- KServe V1 ----
    (
        "v1-wrong-width",
        "iris",
        "POST",
        V1,
        JSON_CT,
        js({"instances": [[1, 2, 3]]}),
        400,
        "instance 0 has 3 values, expected 4",
    ),
    (
        "v1-no-instances",
        "iris",
        "POST",
        V1,
        JSON_CT,
        js({"inputs": [[1, 2, 3, 4]]}),
        400,
        'the body must be a JSON object {"instances"',
    ),
    (
        "v1-unknown-model",
        "iris",
        "POST",
        "/v1/models/nope:predict",
        JSON_CT,
        js({"instances": [[1, 2, 3, 4]]}),
        404,
        "model 'nope' is not served here",
    ),
    (
        "v1-text-plain",
        "iris",
        "POST",
        V1,
        {"Content-Type": "text/plain"},
        js({"instances": [[1, 2, 3, 4]]}),
        415,
        "content type text/plain",
    ),
    (
        "v1-string-for-number",
        "iris",
        "POST",
        V1,
        JSON_CT,
        js({"instances": [[1, "x", 3, 4]]}),
        400,
        "feature 'sepal_width' at row 0 must be a number, got string 'x'",
    ),
]


@pytest.fixture(scope="module")
def clients(iris_bundle: Path, sales_bundle: Path) -> Iterator[dict[str, TestClient]]:
    with app_client(iris_bundle, **LIMITS) as iris, app_client(sales_bundle, **LIMITS) as sales:
        yield {"iris": iris, "sales": sales}


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("model", "method", "path", "headers", "body", "status", "message"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input(
    clients: dict[str, TestClient],
    model: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    message: str,
) -> None:
    client = clients[model]
    r = client.request(method, path, content=body or None, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    payload = r.json()
    assert set(payload) == {"error"}
    assert message in payload["error"]
    assert "Traceback" not in r.text


def test_server_keeps_serving_and_counts_rejections(clients: dict[str, TestClient]) -> None:
    iris = clients["iris"]
    assert iris.post("/predict", json={**IRIS, "sepal_length": "x"}).status_code == 400
    assert iris.post("/predict", content=js(IRIS), headers={"Content-Type": "text/plain"}).status_code == 415
    r = iris.post("/predict", json=IRIS)
    assert r.status_code == 200 and r.json()["predictions"] == ["setosa"]
    metrics: Metrics = iris.app.state.metrics  # type: ignore[attr-defined]
    reg = metrics.registry
    assert reg.get_sample_value("model_server_prediction_errors_total", {"kind": "invalid_input"}) >= 1
    assert (
        reg.get_sample_value("model_server_prediction_errors_total", {"kind": "unsupported_media_type"}) >= 1
    )
