"""Stock Open Inference Protocol clients, unmodified, against a real server's gRPC port: tritonclient.grpc
and KServe's InferenceGRPCClient (each in a process of its own), and grpcurl through server
reflection, with no proto file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.grpccalls import run_stock_client
from support.paths import TOOLS
from support.serverproc import ServerProcess, start_server
from support.tools import run, tool


@pytest.fixture(scope="module")
def iris(iris_bundle: Path) -> Iterator[ServerProcess]:
    with start_server(iris_bundle) as srv:
        yield srv


@pytest.fixture(scope="module")
def both(iris_bundle: Path, sales_bundle: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with start_server(iris_bundle) as iris, start_server(sales_bundle) as sales:
        yield iris, sales


@pytest.fixture(scope="module")
def triton(both: tuple[ServerProcess, ServerProcess]) -> dict:
    return run_stock_client("triton_grpc", both[0].grpc_target, both[1].grpc_target)


def test_tritonclient_health_and_metadata(triton: dict) -> None:
    assert (triton["live"], triton["ready"], triton["model_ready"]) == (True, True, [True, True, False])
    assert triton["server"] == {"name": "model-server", "extensions": ["binary_tensor_data"]}
    assert triton["model"]["inputs"] == [
        ["sepal_length", "FP64"],
        ["sepal_width", "FP64"],
        ["petal_length", "FP64"],
        ["petal_width", "FP64"],
    ]


def test_tritonclient_infers_with_raw_fp32_fp64_and_int64_and_requested_outputs(triton: dict) -> None:
    assert triton["fp32"] == {
        "id": "abc",
        "outputs": ["predictions", "probabilities"],
        "predictions": ["setosa", "virginica"],
        "probabilities_shape": [2, 3],
        "argmax": [0, 2],
    }
    assert triton["fp64_classes"] == ["setosa", "versicolor", "virginica"]
    assert triton["int64"] == ["virginica"]


def test_tritonclient_errors_are_statuses_with_the_rest_messages(triton: dict) -> None:
    assert triton["wrong_shape"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "must have shape [rows, 4]" in triton["wrong_shape"]["message"]
    assert triton["unknown_model"] == {
        "status": "StatusCode.NOT_FOUND",
        "message": "model 'nope' is not served here: this server serves 'iris-classifier'",
    }
    assert triton["unknown_version"]["status"] == "StatusCode.NOT_FOUND"


def test_tritonclient_sends_bytes_for_the_string_feature(triton: dict) -> None:
    sales = triton["sales"]
    assert sales["dtype"] == "float64" and len(sales["values"]) == 2
    assert sales["values"][0] > sales["values"][1]  # cheaper, more advertising, bigger store, stronger region


# KServe's SDK pins its own fastapi, pandas and uvicorn: it runs from a venv of its own (mk/grpc.mk).
KSERVE_PYTHON = TOOLS / "kserve-venv" / "bin" / "python"


def test_kserve_grpc_client(both: tuple[ServerProcess, ServerProcess]) -> None:
    assert KSERVE_PYTHON.exists(), f"{KSERVE_PYTHON} is missing: `make test` builds it"
    seen = run_stock_client("kserve_grpc", both[0].grpc_target, both[1].grpc_target, python=KSERVE_PYTHON)
    assert (seen["live"], seen["ready"], seen["model_ready"]) == (True, True, True)
    # Typed contents come back typed, raw contents raw: the client reads both the same.
    for form in ("typed", "raw"):
        assert seen[form] == {"id": "k1", "outputs": {"predictions": ["setosa", "virginica"]}}, form
    assert seen["error"]["code"] == "INVALID_ARGUMENT"
    assert seen["error"]["details"].startswith("a 2-D input tensor must have shape [rows, 4]")
    assert len(seen["sales"]) == 2 and seen["sales"][0] > seen["sales"][1]


def test_grpcurl_lists_and_calls_through_reflection(iris: ServerProcess) -> None:
    grpc_url = tool("grpcurl")
    services = run([grpc_url, "-plaintext", iris.grpc_target, "list"]).stdout.split()
    assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= set(services)
    methods = run([grpc_url, "-plaintext", iris.grpc_target, "list", "inference.GRPCInferenceService"]).stdout
    assert "inference.GRPCInferenceService.ModelInfer" in methods.split()
    health = run([grpc_url, "-plaintext", iris.grpc_target, "grpc.health.v1.Health/Check"]).stdout
    assert json.loads(health) == {"status": "SERVING"}
    request = {
        "model_name": "iris-classifier",
        "inputs": [
            {
                "name": "input",
                "datatype": "FP64",
                "shape": [1, 4],
                "contents": {"fp64_contents": [6.7, 3.0, 5.2, 2.3]},
            }
        ],
    }
    done = run(
        [
            grpc_url,
            "-plaintext",
            "-d",
            json.dumps(request),
            iris.grpc_target,
            "inference.GRPCInferenceService/ModelInfer",
        ]
    )
    answer = json.loads(done.stdout)
    assert answer["model_name"] == "iris-classifier" and answer["model_version"] == "1.0.0"
    assert answer["outputs"][0]["contents"]["bytes_contents"] == ["dmlyZ2luaWNh"]  # base64 of "virginica"
    request["inputs"][0]["shape"] = [1, 3]
    bad = run(
        [
            grpc_url,
            "-plaintext",
            "-d",
            json.dumps(request),
            iris.grpc_target,
            "inference.GRPCInferenceService/ModelInfer",
        ],
        check=False,
    )
    assert bad.returncode != 0
    assert "Code: InvalidArgument" in bad.stderr and "has 4 values, its shape says 3" in bad.stderr
