"""Open Inference Protocol (V2) and KServe V1 over the real app in-process."""

from __future__ import annotations

import json
import struct

import numpy as np
from fastapi.testclient import TestClient

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
SALES = [
    {"region": "north", "price": 12.5, "advertising": 800.0, "store_size": 3},
    {"region": "west", "price": 40.0, "advertising": 150.0, "store_size": 1},
]
INFER = "/v2/models/iris-classifier/infer"


def outputs(body: dict) -> dict[str, dict]:
    return {o["name"]: o for o in body["outputs"]}


def test_server_and_model_metadata(iris: TestClient) -> None:
    assert iris.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    assert iris.get("/v2/health/live").json() == {"live": True}
    assert iris.get("/v2/health/ready").json() == {"ready": True}
    assert iris.get("/v2/models/iris-classifier/ready").json() == {"name": "iris-classifier", "ready": True}
    assert iris.get("/v2/models/iris-classifier/versions/1.0.0/ready").status_code == 200
    meta = iris.get("/v2/models/iris-classifier").json()
    assert meta == iris.get("/v2/models/iris-classifier/versions/1.0.0").json()
    assert meta["versions"] == ["1.0.0"]
    assert [i["name"] for i in meta["inputs"]] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    assert {o["name"]: o["shape"] for o in meta["outputs"]} == {
        "predictions": [-1],
        "probabilities": [-1, 3],
        "classes": [3],
    }


def test_infer_one_2d_tensor_echoes_id(iris: TestClient) -> None:
    req = {
        "id": "req-7",
        "inputs": [
            {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [v for row in IRIS_ROWS for v in row]}
        ],
    }
    r = iris.post(INFER, json=req)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["id"] == "req-7" and body["model_name"] == "iris-classifier" and body["model_version"] == "1.0.0"
    )
    assert body["outputs"] == [
        {"name": "predictions", "datatype": "BYTES", "shape": [2], "data": ["setosa", "virginica"]}
    ]


def test_infer_nested_data_int_datatype_and_versioned_path(iris: TestClient) -> None:
    req = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT64", "data": [[5, 3, 1, 0]]}]}
    r = iris.post("/v2/models/iris-classifier/versions/1.0.0/infer", json=req)
    assert r.status_code == 200, r.text
    assert outputs(r.json())["predictions"]["data"] == ["setosa"]


def test_infer_probabilities_when_requested_as_output(iris: TestClient) -> None:
    req = {
        "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": IRIS_ROWS}],
        "outputs": [{"name": "probabilities"}, {"name": "classes"}],
    }
    out = outputs(iris.post(INFER, json=req).json())
    assert set(out) == {"probabilities", "classes"}
    assert out["classes"]["data"] == ["setosa", "versicolor", "virginica"]
    assert out["probabilities"]["shape"] == [2, 3]
    probs = np.array(out["probabilities"]["data"]).reshape(2, 3)
    assert probs[0].argmax() == 0 and probs[1].argmax() == 2
    by_param = iris.post(INFER, json={"inputs": req["inputs"], "parameters": {"return_probabilities": True}})
    assert set(outputs(by_param.json())) == {"predictions", "probabilities", "classes"}


def test_infer_one_tensor_per_feature_with_bytes_for_the_string_feature(sales: TestClient) -> None:
    inputs = [
        {"name": "region", "shape": [2], "datatype": "BYTES", "data": [s["region"] for s in SALES]},
        {"name": "price", "shape": [2, 1], "datatype": "FP32", "data": [[s["price"]] for s in SALES]},
        {"name": "advertising", "shape": [2], "datatype": "FP64", "data": [s["advertising"] for s in SALES]},
        {"name": "store_size", "shape": [2], "datatype": "INT32", "data": [s["store_size"] for s in SALES]},
    ]
    r = sales.post("/v2/models/sales-regressor/infer", json={"inputs": inputs})
    assert r.status_code == 200, r.text
    pred = outputs(r.json())["predictions"]
    assert pred["datatype"] == "FP64" and pred["shape"] == [2]
    named = sales.post("/predict", json={"instances": SALES}).json()["predictions"]
    assert np.allclose(pred["data"], named)


def test_binary_tensor_data_in_and_out(sales: TestClient) -> None:
    region = b"".join(struct.pack("<I", len(s["region"])) + s["region"].encode() for s in SALES)
    price = np.array([s["price"] for s in SALES], dtype="<f4").tobytes()
    adv = np.array([s["advertising"] for s in SALES], dtype="<f8").tobytes()
    size = np.array([s["store_size"] for s in SALES], dtype="<i8").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "region",
                    "shape": [2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(region)},
                },
                {
                    "name": "price",
                    "shape": [2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(price)},
                },
                {
                    "name": "advertising",
                    "shape": [2],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": len(adv)},
                },
                {
                    "name": "store_size",
                    "shape": [2],
                    "datatype": "INT64",
                    "parameters": {"binary_data_size": len(size)},
                },
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    r = sales.post(
        "/v2/models/sales-regressor/infer",
        content=header + region + price + adv + size,
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:n])
    out = head["outputs"][0]
    assert out["parameters"] == {"binary_data_size": 16}
    values = np.frombuffer(r.content[n:], dtype="<f8")
    named = sales.post("/predict", json={"instances": SALES}).json()["predictions"]
    assert np.allclose(values, named)


def test_v1_lists_in_feature_order_and_records(iris: TestClient, sales: TestClient) -> None:
    r = iris.post("/v1/models/iris-classifier:predict", json={"instances": IRIS_ROWS})
    assert r.json() == {"predictions": ["setosa", "virginica"]}
    r = iris.post("/v1/models/iris-classifier:predict?probabilities=true", json={"instances": IRIS_ROWS[:1]})
    assert r.json()["probabilities"][0]["setosa"] > 0.9
    mixed = [[s["region"], s["price"], s["advertising"], s["store_size"]] for s in SALES]
    by_list = sales.post("/v1/models/sales-regressor:predict", json={"instances": mixed}).json()
    by_record = sales.post("/v1/models/sales-regressor:predict", json={"instances": SALES}).json()
    assert by_list == by_record and len(by_list["predictions"]) == 2


def test_missing_values_reach_a_model_that_takes_them(iris: TestClient) -> None:
    # scikit-learn's forests accept NaN, so the iris bundle records allow_nan and null means missing
    r = iris.post(
        "/predict", json={"sepal_length": None, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
    )
    assert r.status_code == 200 and r.json()["predictions"] == ["virginica"]
