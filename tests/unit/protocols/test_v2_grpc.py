"""The gRPC binding's codec (protocols/v2_grpc.py) over the demo bundles' metadata: typed contents and
raw contents decode to the rows the REST binding gets, outputs come back raw or typed as asked, and
every mistake is InvalidInput with the REST binding's message."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from model_server.bundle.metadata import read_metadata
from model_server.errors import InvalidInput
from model_server.features import InputSchema
from model_server.protocols import v2 as rest
from model_server.protocols import v2_grpc
from model_server.protocols.proto import grpc_predict_v2_pb2 as pb
from model_server.types import Metadata, Prediction

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def iris(iris_bundle: Path) -> tuple[Metadata, InputSchema]:
    meta = read_metadata(iris_bundle)
    return meta, InputSchema.for_model(meta, 64)


@pytest.fixture(scope="module")
def sales(sales_bundle: Path) -> tuple[Metadata, InputSchema]:
    meta = read_metadata(sales_bundle)
    return meta, InputSchema.for_model(meta, 64)


def request(*inputs: pb.ModelInferRequest.InferInputTensor, **fields: object) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(model_name="iris-classifier", inputs=list(inputs), **fields)


def tensor(
    name: str, datatype: str, shape: list[int], **contents: object
) -> pb.ModelInferRequest.InferInputTensor:
    return pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents)
    )


def decode(msg: pb.ModelInferRequest, model: tuple[Metadata, InputSchema], proba: bool = False):
    meta, schema = model
    # Through the bytes, as the transport hands them over.
    return v2_grpc.decode(v2_grpc.parse_infer_request(msg.SerializeToString()), schema, meta, proba)


def test_typed_and_raw_contents_decode_to_the_rows_rest_gets(iris) -> None:
    flat = [v for row in IRIS_ROWS for v in row]
    typed = decode(request(tensor("input", "FP64", [2, 4], fp64_contents=flat)), iris)
    raw = decode(
        request(
            pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=[2, 4]),
            raw_input_contents=[np.asarray(IRIS_ROWS, dtype="<f4").tobytes()],
        ),
        iris,
    )
    body = (
        b'{"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP64", "data": %s}]}'
        % str(IRIS_ROWS).encode()
    )
    via_rest = rest.decode(body, None, iris[1]).rows
    assert np.array_equal(typed.rows, via_rest)
    assert np.allclose(raw.rows, via_rest, atol=1e-6)
    assert typed.request.binary_default is False and raw.request.binary_default is True


def test_one_tensor_per_feature_with_bytes_for_the_string_feature(sales) -> None:
    msg = pb.ModelInferRequest(
        model_name="sales-regressor",
        inputs=[
            tensor("region", "BYTES", [2], bytes_contents=[b"north", b"west"]),
            tensor("price", "FP64", [2, 1], fp64_contents=[12.5, 40.0]),
            tensor("advertising", "FP32", [2], fp32_contents=[800.0, 150.0]),
            tensor("store_size", "INT64", [2], int64_contents=[3, 1]),
        ],
    )
    rows = decode(msg, sales).rows
    assert list(rows["region"]) == ["north", "west"] and list(rows["store_size"]) == [3, 1]


def test_raw_bytes_elements_are_length_prefixed(sales) -> None:
    def raw_bytes(*values: bytes) -> bytes:
        return b"".join(struct.pack("<I", len(v)) + v for v in values)

    names = [("region", "BYTES"), ("price", "FP64"), ("advertising", "FP64"), ("store_size", "INT64")]
    raws = [
        raw_bytes(b"south"),
        np.array([10.0]).tobytes(),
        np.array([100.0]).tobytes(),
        np.array([2], dtype="<i8").tobytes(),
    ]
    msg = pb.ModelInferRequest(
        model_name="sales-regressor",
        inputs=[pb.ModelInferRequest.InferInputTensor(name=n, datatype=d, shape=[1]) for n, d in names],
        raw_input_contents=raws,
    )
    assert list(decode(msg, sales).rows["region"]) == ["south"]


@pytest.mark.parametrize(
    ("msg", "message"),
    [
        (request(), '"inputs" must be a non-empty list of tensors'),
        (request(tensor("input", "FP64", [1, 3], fp64_contents=[1, 2, 3])), r"shape [rows, 4]"),
        (request(tensor("input", "FP64", [1, 4], fp64_contents=[1, 2, 3])), "has 3 values, its shape says 4"),
        (
            request(tensor("input", "FP64", [1, 4], fp32_contents=[1, 2, 3, 4])),
            "go in contents.fp64_contents",
        ),
        (request(tensor("input", "FP16", [1, 4])), "FP16, which has no contents field"),
        (request(tensor("input", "FLOAT", [1, 4])), "datatype 'FLOAT'; supported"),
        (request(tensor("input", "FP64", [-1, 4])), "list of non-negative integers"),
        (request(tensor("", "FP64", [1, 4])), 'input 0 has no "name"'),
        (request(tensor("input", "INT8", [1, 4], int_contents=[1, 2, 3, 300])), "do not fit INT8"),
        (request(tensor("input", "BYTES", [1, 4], bytes_contents=[b"\xff"] * 4)), "not UTF-8 text"),
        (
            request(
                pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP64", shape=[1, 4]),
                raw_input_contents=[b"\0" * 31],
            ),
            "has 31 bytes of FP64 data, its shape needs 32",
        ),
        (
            request(
                tensor("input", "FP64", [1, 4], fp64_contents=[1, 2, 3, 4]),
                raw_input_contents=[b"\0" * 32],
            ),
            "both contents and raw_input_contents",
        ),
        (
            request(
                pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP64", shape=[1, 4]),
                raw_input_contents=[b"\0" * 32, b""],
            ),
            "raw_input_contents has 2 entries for 1 inputs",
        ),
        (
            request(
                tensor("input", "FP64", [1, 4], fp64_contents=[1, 2, 3, 4]),
                outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="scores")],
            ),
            "unknown output 'scores'",
        ),
        (
            request(
                tensor("input", "FP64", [1, 4], fp64_contents=[1, 2, 3, 4]),
                parameters={"return_probabilities": pb.InferParameter(string_param="yes")},
            ),
            "return_probabilities must be true or false",
        ),
    ],
)
def test_mistakes_are_invalid_input_naming_the_problem(iris, msg: pb.ModelInferRequest, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        decode(msg, iris)
    assert message in err.value.message


def test_bytes_that_are_not_a_message_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not a valid ModelInferRequest"):
        v2_grpc.parse_infer_request(b"\x0a\xff\xff")


def test_outputs_raw_when_inputs_were_raw_else_typed_in_the_asked_order(iris) -> None:
    meta, _ = iris
    prediction = Prediction(
        np.array(["setosa", "virginica"], dtype=object), np.array([[1, 0, 0], [0, 0.1, 0.9]])
    )
    base = tensor("input", "FP64", [2, 4], fp64_contents=[1.0] * 8)
    asked = [
        pb.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in ("probabilities", "predictions")
    ]
    typed = pb.ModelInferResponse.FromString(
        v2_grpc.encode(meta, decode(request(base, outputs=asked, id="r1"), iris), prediction)
    )
    assert (typed.id, typed.model_name, typed.model_version) == ("r1", "iris-classifier", "1.0.0")
    assert [o.name for o in typed.outputs] == ["probabilities", "predictions"]
    assert list(typed.outputs[0].shape) == [2, 3] and list(typed.outputs[0].contents.fp64_contents)[-1] == 0.9
    assert list(typed.outputs[1].contents.bytes_contents) == [b"setosa", b"virginica"]
    assert not typed.raw_output_contents

    raw_req = request(
        pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP64", shape=[2, 4]),
        raw_input_contents=[np.ones(8).tobytes()],
    )
    raw = pb.ModelInferResponse.FromString(
        v2_grpc.encode(meta, decode(raw_req, iris), Prediction(prediction.predictions))
    )
    assert [o.name for o in raw.outputs] == ["predictions"] and not raw.outputs[0].HasField("contents")
    assert (
        raw.raw_output_contents[0] == struct.pack("<I", 6) + b"setosa" + struct.pack("<I", 9) + b"virginica"
    )


def test_parameters_ask_for_probabilities_and_raw_outputs(iris) -> None:
    params = {
        "return_probabilities": pb.InferParameter(bool_param=True),
        "binary_data_output": pb.InferParameter(bool_param=True),
    }
    decoded = decode(
        request(tensor("input", "FP64", [1, 4], fp64_contents=[1.0] * 4), parameters=params), iris
    )
    assert decoded.proba and decoded.request.binary_default


def test_model_metadata_matches_the_rest_document(iris) -> None:
    meta, _ = iris
    msg = pb.ModelMetadataResponse.FromString(v2_grpc.model_metadata(meta))
    assert (msg.name, list(msg.versions), msg.platform) == ("iris-classifier", ["1.0.0"], "scikit-learn")
    first = msg.inputs[0]
    assert (first.name, first.datatype, list(first.shape)) == ("sepal_length", "FP64", [-1])
    assert [(t.name, list(t.shape)) for t in msg.outputs] == [
        ("predictions", [-1]),
        ("probabilities", [-1, 3]),
        ("classes", [3]),
    ]
