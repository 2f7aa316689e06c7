"""The stock Open Inference Protocol client (tritonclient.http, unmodified) against the real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from support.serverproc import ServerProcess, start_server


@pytest.fixture(scope="module")
def servers(iris_bundle: Path, sales_bundle: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with start_server(iris_bundle) as iris, start_server(sales_bundle) as sales:
        yield iris, sales


def client(srv: ServerProcess) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=f"127.0.0.1:{srv.port}")


def test_health_and_metadata(servers: tuple[ServerProcess, ServerProcess]) -> None:
    c = client(servers[0])
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready("iris-classifier") and c.is_model_ready("iris-classifier", "1.0.0")
    assert not c.is_model_ready("nope")
    meta = c.get_model_metadata("iris-classifier")
    assert meta["name"] == "iris-classifier" and len(meta["inputs"]) == 4


def test_iris_with_a_2d_tensor_and_default_binary_data(servers: tuple[ServerProcess, ServerProcess]) -> None:
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    inp = triton.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)  # binary_data=True: the client's default
    result = client(servers[0]).infer("iris-classifier", [inp], request_id="abc")
    assert result.get_response()["id"] == "abc"
    assert result.as_numpy("predictions").tolist() == [b"setosa", b"virginica"]


def test_iris_probabilities_as_json_outputs(servers: tuple[ServerProcess, ServerProcess]) -> None:
    x = np.array([[6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
    inp = triton.InferInput("input", [1, 4], "FP64")
    inp.set_data_from_numpy(x, binary_data=False)
    outs = [
        triton.InferRequestedOutput("probabilities", binary_data=False),
        triton.InferRequestedOutput("classes", binary_data=True),
    ]
    result = client(servers[0]).infer("iris-classifier", [inp], outputs=outs)
    proba = result.as_numpy("probabilities")
    assert proba.shape == (1, 3) and proba[0].argmax() == 2
    assert result.as_numpy("classes").tolist() == [b"setosa", b"versicolor", b"virginica"]


def test_sales_pipeline_with_a_bytes_tensor_per_string_feature(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    columns = {
        "region": (np.array([b"north", b"west"], dtype=np.object_), "BYTES"),
        "price": (np.array([12.5, 40.0], dtype=np.float64), "FP64"),
        "advertising": (np.array([800.0, 150.0], dtype=np.float32), "FP32"),
        "store_size": (np.array([3, 1], dtype=np.int64), "INT64"),
    }
    inputs = []
    for name, (values, datatype) in columns.items():
        inp = triton.InferInput(name, [2], datatype)
        inp.set_data_from_numpy(values)
        inputs.append(inp)
    result = client(servers[1]).infer("sales-regressor", inputs, model_version="1.0.0")
    values = result.as_numpy("predictions")
    assert values.dtype == np.float64 and values.shape == (2,)
    assert values[0] > values[1]  # cheaper, more advertising, bigger store in a stronger region


def test_errors_reach_the_client_as_exceptions(servers: tuple[ServerProcess, ServerProcess]) -> None:
    inp = triton.InferInput("input", [1, 3], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(triton.InferenceServerException, match=r"shape \[rows, 4\]"):
        client(servers[0]).infer("iris-classifier", [inp])
