"""Hypothesis against the pure codecs: the V2 tensor decoder, the named-feature parser and the V1
instances parser, for both demo models (numeric array; DataFrame with a string feature).

Properties: whatever the bytes, a decoder either returns rows of the model's width (between 1 and
MAX_REQUEST_ROWS of them) or raises a ClientError (a 4xx) whose message names a problem; never any
other exception. Well-formed requests decode to exactly the values sent, in every encoding (JSON
flat or nested, binary tensor data, per-feature tensors).

Examples per property are bounded (FUZZ_EXAMPLES, default 300) so the module runs in seconds; the
generated inputs mix valid requests with ones a few mutations away from valid, which is where decoders
break, and arbitrary JSON and bytes.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from model_server.bundle.metadata import read_metadata
from model_server.errors import ClientError
from model_server.features import InputSchema
from model_server.protocols import named as protocol_named
from model_server.protocols import oip
from model_server.protocols import v1 as protocol_v1
from model_server.protocols import v2 as protocol_v2

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
MAX_ROWS = 16
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Cases tried, per property, for the figures in the testing docs (printed at the end of the module).
TRIED: dict[str, int] = {}


def _count(name: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1


@pytest.fixture(scope="module")
def schemas(iris_bundle: Path, sales_bundle: Path) -> dict[str, InputSchema]:
    return {
        "iris": InputSchema.for_model(read_metadata(iris_bundle), MAX_ROWS),
        "sales": InputSchema.for_model(read_metadata(sales_bundle), MAX_ROWS),
    }


@pytest.fixture(scope="module", autouse=True)
def report() -> Any:
    yield
    print("codec fuzz cases tried:", json.dumps(TRIED, sort_keys=True), "total", sum(TRIED.values()))


# ---- strategies ---------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
FEATURE_NAMES = [
    "sepal_length",
    "sepal_width",
    "petal_length",
    "petal_width",
    "region",
    "price",
    "advertising",
    "store_size",
]
names = st.one_of(st.sampled_from(FEATURE_NAMES), st.text(max_size=10), st.just("input-0"))
datatypes = st.one_of(st.sampled_from(oip.DATATYPES), st.text(max_size=6))
shapes = st.lists(st.integers(min_value=-2, max_value=6), min_size=0, max_size=3)


def _nest(values: list[Any], shape: list[int], nested: bool) -> Any:
    if not nested or len(shape) < 2 or any(d <= 0 for d in shape) or math.prod(shape) != len(values):
        return values
    step = math.prod(shape[1:])
    return [_nest(values[i * step : (i + 1) * step], shape[1:], True) for i in range(shape[0])]


@st.composite
def v2_tensors(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """One input tensor, often well-formed, often a mutation away: returns (spec, binary part)."""
    datatype = draw(datatypes)
    shape = draw(shapes)
    count = math.prod(shape) if shape and all(d >= 0 for d in shape) else draw(st.integers(0, 6))
    count = count + draw(st.sampled_from([0, 0, 0, 1, -1])) if count else count
    count = max(0, min(count, 64))
    if datatype == "BYTES":
        values: list[Any] = draw(st.lists(st.text(max_size=6), min_size=count, max_size=count))
    elif datatype == "BOOL":
        values = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    else:
        values = draw(
            st.lists(st.one_of(st.floats(width=32), st.integers(-1000, 1000)), min_size=count, max_size=count)
        )
    if draw(st.integers(0, 9)) == 0:  # a foreign value somewhere
        values = [*values, draw(scalars)]
    spec: dict[str, Any] = {"name": draw(names), "shape": shape, "datatype": datatype}
    binary = b""
    if datatype in oip.NUMPY_DTYPES and draw(st.booleans()):
        try:
            with np.errstate(over="ignore"):
                binary = np.asarray(values, dtype=oip.NUMPY_DTYPES[datatype]).tobytes()
        except (ValueError, OverflowError, TypeError):
            binary = draw(st.binary(max_size=64))
        binary = binary[: draw(st.integers(0, len(binary)))] if draw(st.integers(0, 4)) == 0 else binary
        spec["parameters"] = {"binary_data_size": draw(st.sampled_from([len(binary), len(binary) + 1, -1]))}
    elif datatype == "BYTES" and draw(st.booleans()):
        binary = b"".join(
            struct.pack("<I", len(v.encode())) + v.encode() for v in values if isinstance(v, str)
        )
        spec["parameters"] = {"binary_data_size": len(binary)}
    else:
        spec["data"] = _nest(values, shape, draw(st.booleans()))
    if draw(st.integers(0, 14)) == 0:
        spec[draw(st.sampled_from(["extra", "data", "parameters", "shape"]))] = draw(json_values)
    return spec, binary


@st.composite
def v2_bodies(draw: st.DrawFn) -> tuple[bytes, int | None]:
    tensors = draw(st.lists(v2_tensors(), min_size=0, max_size=5))
    doc: dict[str, Any] = {"inputs": [t for t, _ in tensors]}
    if draw(st.booleans()):
        doc["id"] = draw(st.one_of(st.text(max_size=5), scalars))
    if draw(st.integers(0, 4)) == 0:
        doc["outputs"] = draw(json_values)
    if draw(st.integers(0, 4)) == 0:
        doc["parameters"] = draw(json_values)
    if draw(st.integers(0, 14)) == 0:
        doc[draw(st.text(max_size=6))] = draw(json_values)
    header = json.dumps(doc).encode()
    binary = b"".join(b for _, b in tensors)
    if not binary and draw(st.integers(0, 3)):
        return header, None
    length = len(header) + draw(st.sampled_from([0, 0, 0, 1, -1, -len(header) - 1, 10**6]))
    return header + binary, length


SPECS = {
    "iris": [
        ("sepal_length", "float"),
        ("sepal_width", "float"),
        ("petal_length", "float"),
        ("petal_width", "float"),
    ],
    "sales": [("region", "string"), ("price", "float"), ("advertising", "float"), ("store_size", "int")],
}
REGIONS = ["north", "south", "east", "west"]


def _values(draw: st.DrawFn, dtype: str, n: int) -> list[Any]:
    if dtype == "string":
        return draw(
            st.lists(st.one_of(st.sampled_from(REGIONS), st.text(max_size=6)), min_size=n, max_size=n)
        )
    if dtype == "int":
        return draw(st.lists(st.integers(0, 50), min_size=n, max_size=n))
    return draw(st.lists(finite, min_size=n, max_size=n))


def _encode(values: list[Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
    return np.asarray(values, dtype=oip.NUMPY_DTYPES[datatype]).tobytes()


@st.composite
def valid_v2(draw: st.DrawFn, model: str) -> tuple[dict[str, Any], list[bytes]]:
    """A well-formed inference request for ``model``: one 2-D tensor or one tensor per feature,
    JSON (flat or nested) or binary data."""
    feats = SPECS[model]
    n = draw(st.integers(1, MAX_ROWS))
    binary = draw(st.booleans())
    if model == "iris" and draw(st.booleans()):
        datatype = draw(st.sampled_from(["FP64", "FP32"]))
        flat = draw(st.lists(finite, min_size=4 * n, max_size=4 * n))
        t: dict[str, Any] = {"name": "input-0", "shape": [n, 4], "datatype": datatype}
        if binary:
            data = _encode(flat, datatype)
            t["parameters"] = {"binary_data_size": len(data)}
            return {"inputs": [t]}, [data]
        t["data"] = _nest(flat, [n, 4], draw(st.booleans()))
        return {"inputs": [t]}, [b""]
    inputs, bins = [], []
    for name, dtype in feats:
        datatype = {
            "string": "BYTES",
            "int": draw(st.sampled_from(["INT64", "INT32"])),
            "float": draw(st.sampled_from(["FP64", "FP32"])),
        }[dtype]
        values = _values(draw, dtype, n)
        t = {"name": name, "shape": draw(st.sampled_from([[n], [n, 1]])), "datatype": datatype}
        if binary and draw(st.booleans()):
            data = _encode(values, datatype)
            t["parameters"] = {"binary_data_size": len(data)}
            bins.append(data)
        else:
            t["data"] = values
            bins.append(b"")
        inputs.append(t)
    return {"inputs": inputs}, bins


def _mutate_v2(draw: st.DrawFn, doc: dict[str, Any], bins: list[bytes]) -> None:
    inputs = doc.get("inputs")
    if not isinstance(inputs, list):
        # an earlier "top-level" mutation replaced "inputs" with any JSON value: mutate a detached
        # tensor so the next operation still draws, and leave that value as it is
        inputs = []
    i = draw(st.integers(0, len(inputs) - 1)) if inputs else 0
    t = inputs[i] if inputs and isinstance(inputs[i], dict) else {}
    op = draw(
        st.sampled_from(
            [
                "datatype",
                "shape",
                "dim",
                "value",
                "nan",
                "drop-value",
                "name",
                "duplicate",
                "drop-input",
                "extra-field",
                "binary-size",
                "no-data",
                "outputs",
                "many-rows",
                "top-level",
            ]
        )
    )
    if op == "datatype":
        t["datatype"] = draw(datatypes)
    elif op == "shape":
        t["shape"] = draw(shapes)
    elif op == "dim" and t.get("shape"):
        j = draw(st.integers(0, len(t["shape"]) - 1))
        t["shape"][j] += draw(st.sampled_from([-1, 1]))
    elif op in ("value", "nan", "drop-value") and isinstance(t.get("data"), list) and t["data"]:
        flat = oip.flatten(t["data"])
        j = draw(st.integers(0, len(flat) - 1))
        if op == "drop-value":
            flat.pop(j)
        else:
            flat[j] = (
                draw(scalars) if op == "value" else draw(st.sampled_from([math.nan, math.inf, -math.inf]))
            )
        t["data"] = flat
    elif op == "name":
        t["name"] = draw(names)
    elif op == "duplicate" and inputs:
        inputs.append(dict(t))
        bins.append(bins[i])
    elif op == "drop-input" and inputs:
        inputs.pop(i)
        bins.pop(i)
    elif op == "extra-field":
        t[draw(st.sampled_from(["extra", "data", "parameters", "contents"]))] = draw(json_values)
    elif op == "binary-size" and "parameters" in t:
        t["parameters"] = {
            "binary_data_size": draw(st.sampled_from([-1, 0, 10**9]))
            if draw(st.booleans())
            else t["parameters"].get("binary_data_size", 0) + draw(st.sampled_from([-1, 1]))
        }
    elif op == "no-data":
        t.pop("data", None)
        t.pop("parameters", None)
    elif op == "outputs":
        doc["outputs"] = draw(
            st.one_of(
                json_values,
                st.lists(
                    st.fixed_dictionaries(
                        {"name": st.sampled_from(["predictions", "probabilities", "classes", "nope"])},
                        optional={"parameters": st.fixed_dictionaries({"binary_data": st.booleans()})},
                    ),
                    max_size=4,
                ),
            )
        )
    elif op == "many-rows" and "data" in t and t.get("shape"):
        t["data"] = oip.flatten(t["data"]) * (MAX_ROWS + 1)
        t["shape"] = [t["shape"][0] * (MAX_ROWS + 1), *t["shape"][1:]]
    elif op == "top-level":
        doc[draw(st.sampled_from(["id", "parameters", "inputs", "unknown"]))] = draw(json_values)


@st.composite
def mutated_v2(draw: st.DrawFn, model: str) -> tuple[bytes, int | None]:
    doc, bins = draw(valid_v2(model))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        _mutate_v2(draw, doc, bins)
    header = json.dumps(doc).encode()
    binary = b"".join(bins)
    if not binary:
        return header, None
    return header + binary, len(header) + draw(st.sampled_from([0, 0, 0, 0, 1, -1, -len(header) - 1]))


def raw_bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.text(max_size=50).map(str.encode),
    )


def _check_rows(rows: Any, schema: InputSchema) -> None:
    event("decoded")
    assert 1 <= len(rows) <= MAX_ROWS
    if isinstance(rows, np.ndarray):
        assert rows.ndim == 2 and rows.shape[1] == schema.width and rows.dtype == np.float64
    else:
        assert isinstance(rows, pd.DataFrame) and list(rows.columns) == list(schema.names)


def _client_error(e: ClientError) -> None:
    event(f"{e.status} {type(e).__name__}")
    assert 400 <= e.status < 500 and isinstance(e.message, str) and len(e.message) > 10, e
    assert "Traceback" not in e.message


# ---- V2 -------------------------------------------------------------------------------------------


@FUZZ
@given(model=st.sampled_from(["iris", "sales"]), data=st.data())
def test_v2_decoder_returns_rows_or_a_client_error(
    schemas: dict[str, InputSchema], model: str, data: st.DataObject
) -> None:
    _count("v2 mutated")
    body, header_length = data.draw(st.one_of(mutated_v2(model), v2_bodies()))
    try:
        req = protocol_v2.decode(body, header_length, schemas[model])
    except ClientError as e:
        _client_error(e)
    else:
        _check_rows(req.rows, schemas[model])


@FUZZ
@given(
    data=raw_bodies(),
    header_length=st.one_of(st.none(), st.integers(-5, 300)),
    model=st.sampled_from(["iris", "sales"]),
)
def test_v2_decoder_survives_arbitrary_bytes(
    schemas: dict[str, InputSchema], data: bytes, header_length: int | None, model: str
) -> None:
    _count("v2 arbitrary")
    try:
        req = protocol_v2.decode(data, header_length, schemas[model])
    except ClientError as e:
        _client_error(e)
    else:
        _check_rows(req.rows, schemas[model])


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@FUZZ
@given(
    rows=st.lists(st.lists(finite, min_size=4, max_size=4), min_size=1, max_size=MAX_ROWS),
    encoding=st.sampled_from(["flat", "nested", "binary-fp64", "per-feature"]),
)
def test_v2_well_formed_iris_requests_decode_to_the_values_sent(
    schemas: dict[str, InputSchema], rows: list[list[float]], encoding: str
) -> None:
    _count("v2 round trip")
    n = len(rows)
    flat = [v for r in rows for v in r]
    header_length = None
    binary = b""
    if encoding == "flat":
        inputs = [{"name": "x", "shape": [n, 4], "datatype": "FP64", "data": flat}]
    elif encoding == "nested":
        inputs = [{"name": "x", "shape": [n, 4], "datatype": "FP64", "data": rows}]
    elif encoding == "binary-fp64":
        binary = np.asarray(flat, dtype="<f8").tobytes()
        inputs = [
            {
                "name": "x",
                "shape": [n, 4],
                "datatype": "FP64",
                "parameters": {"binary_data_size": len(binary)},
            }
        ]
    else:
        inputs = [
            {"name": f, "shape": [n], "datatype": "FP64", "data": [r[j] for r in rows]}
            for j, f in enumerate(FEATURE_NAMES[:4])
        ]
    header = json.dumps({"inputs": inputs}).encode()
    if binary:
        header_length = len(header)
    req = protocol_v2.decode(header + binary, header_length, schemas["iris"])
    assert np.array_equal(np.asarray(req.rows), np.asarray(rows, dtype=np.float64))


@FUZZ
@given(n=st.integers(1, MAX_ROWS), data=st.data())
def test_v2_string_features_arrive_as_sent(
    schemas: dict[str, InputSchema], n: int, data: st.DataObject
) -> None:
    _count("v2 bytes round trip")
    region = data.draw(st.lists(st.text(min_size=1, max_size=8), min_size=n, max_size=n))
    price = data.draw(st.lists(finite, min_size=n, max_size=n))
    advertising = data.draw(st.lists(finite, min_size=n, max_size=n))
    store = data.draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n))
    binary = b"".join(struct.pack("<I", len(r.encode())) + r.encode() for r in region)
    inputs = [
        {
            "name": "region",
            "shape": [n],
            "datatype": "BYTES",
            "parameters": {"binary_data_size": len(binary)},
        },
        {"name": "price", "shape": [n, 1], "datatype": "FP64", "data": price},
        {"name": "advertising", "shape": [n], "datatype": "FP32", "data": advertising},
        {"name": "store_size", "shape": [n], "datatype": "INT64", "data": store},
    ]
    header = json.dumps({"inputs": inputs}).encode()
    rows = protocol_v2.decode(header + binary, len(header), schemas["sales"]).rows
    frame = schemas["sales"].model_input(rows) if isinstance(rows, np.ndarray) else rows
    assert list(frame["region"]) == region
    assert np.array_equal(frame["price"].to_numpy(dtype=np.float64), np.asarray(price))
    assert np.array_equal(
        frame["advertising"].to_numpy(dtype=np.float64),
        np.asarray(advertising, dtype=np.float32).astype(np.float64),
    )
    assert np.array_equal(frame["store_size"].to_numpy(dtype=np.float64), np.asarray(store, dtype=np.float64))


# ---- named features and V1 ------------------------------------------------------------------------


@st.composite
def records(draw: st.DrawFn, model: str) -> Any:
    """A record of ``model``'s features, often with a mutation (key dropped or added, a value of
    another type, NaN or infinity), now and then arbitrary JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    rec: dict[str, Any] = {name: _values(draw, dtype, 1)[0] for name, dtype in SPECS[model]}
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        op = draw(st.integers(0, 3))
        if op == 0 and rec:
            rec.pop(draw(st.sampled_from(sorted(rec))))
        elif op == 1:
            rec[draw(names)] = draw(scalars)
        elif op == 2 and rec:
            rec[draw(st.sampled_from(sorted(rec)))] = draw(scalars)
        elif rec:
            rec[draw(st.sampled_from(sorted(rec)))] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return rec


@st.composite
def named_bodies(draw: st.DrawFn, model: str) -> bytes:
    if draw(st.booleans()):
        doc: Any = draw(records(model))
    else:
        doc = {"instances": draw(st.lists(records(model), min_size=0, max_size=MAX_ROWS + 2))}
        if draw(st.integers(0, 9)) == 0:
            doc[draw(st.text(max_size=5))] = draw(json_values)
    return json.dumps(doc).encode()


@FUZZ
@given(model=st.sampled_from(["iris", "sales"]), data=st.data())
def test_named_parser_returns_rows_or_a_client_error(
    schemas: dict[str, InputSchema], model: str, data: st.DataObject
) -> None:
    _count("named")
    body = data.draw(st.one_of(named_bodies(model), raw_bodies()))
    try:
        rows = protocol_named.decode(body, schemas[model])
    except ClientError as e:
        _client_error(e)
    else:
        _check_rows(rows, schemas[model])


@FUZZ
@given(rows=st.lists(st.lists(finite, min_size=4, max_size=4), min_size=1, max_size=MAX_ROWS))
def test_named_records_decode_to_the_values_sent(
    schemas: dict[str, InputSchema], rows: list[list[float]]
) -> None:
    _count("named round trip")
    doc = {"instances": [dict(zip(FEATURE_NAMES[:4], r, strict=True)) for r in rows]}
    decoded = protocol_named.decode(json.dumps(doc).encode(), schemas["iris"])
    assert np.array_equal(np.asarray(decoded), np.asarray(rows, dtype=np.float64))


@st.composite
def v1_bodies(draw: st.DrawFn, model: str) -> bytes:
    """KServe V1 instances in feature order, with at most one row mutated (or a record among lists)."""
    n = draw(st.integers(0, MAX_ROWS + 2))
    rows: list[Any] = [[_values(draw, dtype, 1)[0] for _, dtype in SPECS[model]] for _ in range(n)]
    op = draw(st.sampled_from(["none", "none", "value", "drop", "add", "nan", "record"]))
    if rows and op != "none":
        i = draw(st.integers(0, len(rows) - 1))
        j = draw(st.integers(0, len(SPECS[model]) - 1))
        if op == "value":
            rows[i][j] = draw(scalars)
        elif op == "drop":
            rows[i].pop(j)
        elif op == "add":
            rows[i].append(draw(scalars))
        elif op == "nan":
            rows[i][j] = math.nan
        else:
            rows[i] = draw(records(model))
    doc: Any = {"instances": rows} if draw(st.integers(0, 9)) else draw(json_values)
    return json.dumps(doc).encode()


@FUZZ
@given(model=st.sampled_from(["iris", "sales"]), data=st.data())
def test_v1_parser_returns_rows_or_a_client_error(
    schemas: dict[str, InputSchema], model: str, data: st.DataObject
) -> None:
    _count("v1")
    body = data.draw(st.one_of(v1_bodies(model), raw_bodies()))
    try:
        rows = protocol_v1.decode(body, schemas[model])
    except ClientError as e:
        _client_error(e)
    else:
        _check_rows(rows, schemas[model])
