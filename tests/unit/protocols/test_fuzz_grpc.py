"""Hypothesis against the gRPC binding's decoder (protocols/v2_grpc.py), for both demo models.

Properties: whatever the bytes, parsing and decoding either give rows of the model's width (between 1
and MAX_ROWS of them) or raise a ClientError whose message names a problem; never another exception.
Well-formed requests (typed or raw contents, one 2-D tensor or one tensor per feature) decode to
exactly the values sent. Generated messages mix valid requests with ones a few mutations away (shapes,
datatypes, contents fields, raw lengths, names), which is where decoders break, and arbitrary bytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_server.bundle.metadata import read_metadata
from model_server.errors import ClientError
from model_server.features import InputSchema
from model_server.protocols import oip, v2_grpc
from model_server.protocols.proto import grpc_predict_v2_pb2 as pb
from model_server.types import Metadata

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
MAX_ROWS = 16
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
Model = tuple[Metadata, InputSchema]


@pytest.fixture(scope="module")
def models(iris_bundle: Path, sales_bundle: Path) -> dict[str, Model]:
    out = {}
    for key, bundle in (("iris", iris_bundle), ("sales", sales_bundle)):
        meta = read_metadata(bundle)
        out[key] = (meta, InputSchema.for_model(meta, MAX_ROWS))
    return out


def _decode_or_client_error(body: bytes, model: Model) -> Any:
    meta, schema = model
    try:
        decoded = v2_grpc.decode(v2_grpc.parse_infer_request(body), schema, meta, False)
    except ClientError as e:
        assert e.message and 400 <= e.status < 500
        return None
    rows = decoded.rows
    assert 1 <= len(rows) <= MAX_ROWS
    width = rows.shape[1] if isinstance(rows, np.ndarray) else len(rows.columns)
    assert width == len(meta.features)
    return decoded


@FUZZ
@given(body=st.binary(max_size=256))
def test_arbitrary_bytes_are_rows_or_a_client_error(models: dict[str, Model], body: bytes) -> None:
    for model in models.values():
        _decode_or_client_error(body, model)


DATATYPES = [*oip.DATATYPES, "FP128", ""]
FIELDS = list(dict.fromkeys(v2_grpc.CONTENTS_FIELD.values()))


@st.composite
def near_valid(draw: st.DrawFn, features: list[str]) -> bytes:
    """A request whose tensors are right or a mutation or two away from right."""
    rows = draw(st.integers(0, MAX_ROWS + 2))
    per_feature = draw(st.booleans())
    names = features if per_feature else [draw(st.sampled_from(["input", features[0], ""]))]
    raw = draw(st.booleans())
    msg = pb.ModelInferRequest(model_name="m")
    for name in names:
        width = 1 if per_feature else len(features)
        shape = draw(
            st.one_of(
                st.just([rows] if per_feature else [rows, width]),
                st.lists(st.integers(-2, MAX_ROWS + 2), max_size=3),
            )
        )
        datatype = draw(st.sampled_from(DATATYPES))
        count = int(np.prod(shape)) if shape and all(d >= 0 for d in shape) else rows
        count = max(0, min(count + draw(st.integers(-1, 1)), 64))
        t = msg.inputs.add(name=name, datatype=datatype, shape=shape)
        if raw:
            size = draw(st.sampled_from([1, 4, 8])) * count + draw(st.integers(-1, 1))
            msg.raw_input_contents.append(draw(st.binary(min_size=max(size, 0), max_size=max(size, 0))))
        else:
            field = draw(st.sampled_from([v2_grpc.CONTENTS_FIELD.get(datatype, "fp64_contents"), *FIELDS]))
            values: list[Any]
            if field == "bytes_contents":
                values = draw(
                    st.lists(
                        st.sampled_from([b"north", b"west", b"\xff", b""]), min_size=count, max_size=count
                    )
                )
            elif field == "bool_contents":
                values = draw(st.lists(st.booleans(), min_size=count, max_size=count))
            elif field in ("fp32_contents", "fp64_contents"):
                values = draw(st.lists(st.floats(width=32), min_size=count, max_size=count))
            elif field.startswith("uint"):
                values = draw(st.lists(st.integers(0, 2**32 - 1), min_size=count, max_size=count))
            else:
                values = draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=count, max_size=count))
            getattr(t.contents, field).extend(values)
    if draw(st.booleans()):
        msg.outputs.add(name=draw(st.sampled_from(["predictions", "probabilities", "classes", "x"])))
    body = msg.SerializeToString()
    if draw(st.integers(0, 9)) == 0:  # a truncated or bit-flipped message
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.binary(max_size=3))
    return body


@FUZZ
@given(data=st.data())
def test_near_valid_messages_are_rows_or_a_client_error(
    models: dict[str, Model], data: st.DataObject
) -> None:
    for meta, schema in models.values():
        body = data.draw(near_valid([f.name for f in meta.features]))
        _decode_or_client_error(body, (meta, schema))


@FUZZ
@given(
    values=st.lists(
        st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=4, max_size=4),
        min_size=1,
        max_size=MAX_ROWS,
    ),
    raw=st.booleans(),
)
def test_well_formed_iris_requests_decode_to_exactly_the_values_sent(
    models: dict[str, Model], values: list[list[float]], raw: bool
) -> None:
    arr = np.asarray(values, dtype="<f8")
    msg = pb.ModelInferRequest(model_name="iris-classifier")
    t = msg.inputs.add(name="input", datatype="FP64", shape=list(arr.shape))
    if raw:
        msg.raw_input_contents.append(arr.tobytes())
    else:
        t.contents.fp64_contents.extend(arr.ravel().tolist())
    decoded = _decode_or_client_error(msg.SerializeToString(), models["iris"])
    assert decoded is not None
    assert np.array_equal(np.asarray(decoded.rows, dtype=np.float64), arr)
