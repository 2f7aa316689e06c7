"""The Open Inference Protocol (KServe V2) without its transport: datatypes, tensors to rows,
requested outputs, and a prediction as output tensors.

The REST binding (v2.py: JSON, binary tensor data after a JSON header) and any other transport of the
same protocol decode their tensors with these rules, so a shape, datatype or feature mistake gets the
same check and the same message whichever way it came.

Inputs: one 2-D numeric tensor ``[rows, features]`` in feature order, or one tensor per feature
(shape ``[rows]`` or ``[rows, 1]``; BYTES for string features). Outputs: ``predictions`` (labels or
values, shape ``[rows]``), and for classifiers with ``predict_proba``: ``probabilities`` (FP64
``[rows, classes]``) and ``classes`` (the labels of those columns, ``[classes]``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import __version__
from ..errors import InvalidInput, cut, quote
from ..features import InputSchema, Rows, json_type
from ..types import Metadata, Prediction

NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
DATATYPES = (*NUMPY_DTYPES, "BYTES")
OUTPUTS = ("predictions", "probabilities", "classes")
_INPUT_DTYPE = {"float": "FP64", "int": "INT64", "string": "BYTES"}


@dataclass(frozen=True)
class InferRequest:
    """A decoded inference request. ``binary_outputs`` (per output) belong to the REST binding's binary
    data extension; ``binary_default`` asks for every output as raw bytes (REST: the binary data
    extension's ``binary_data_output``; gRPC: ``raw_output_contents``)."""

    id: str | None
    rows: Rows
    outputs: tuple[str, ...] | None  # None: the default set
    binary_outputs: frozenset[str]
    binary_default: bool
    parameters: dict[str, Any]


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray


def server_metadata() -> dict[str, Any]:
    return {"name": "model-server", "version": __version__, "extensions": ["binary_tensor_data"]}


def model_metadata(meta: Metadata) -> dict[str, Any]:
    outputs: list[dict[str, Any]] = [
        {"name": "predictions", "datatype": _label_datatype(meta), "shape": [-1]}
    ]
    if meta.has_predict_proba and meta.classes is not None:
        n = len(meta.classes)
        outputs += [
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, n]},
            {"name": "classes", "datatype": _classes_datatype(meta), "shape": [n]},
        ]
    return {
        "name": meta.name,
        "versions": [meta.version],
        "platform": "scikit-learn",
        "inputs": [{"name": f.name, "datatype": _INPUT_DTYPE[f.dtype], "shape": [-1]} for f in meta.features],
        "outputs": outputs,
    }


# ---- request ----------------------------------------------------------------------------------


def check_datatype(name: str, datatype: Any) -> str:
    if datatype not in DATATYPES:
        raise InvalidInput(
            f"input '{cut(name)}' has datatype {quote(datatype)}; supported: {', '.join(DATATYPES)}"
        )
    return str(datatype)


def element_count(name: str, shape: Any) -> int:
    """The number of elements ``shape`` holds; InvalidInput unless it is a list of non-negative ints."""
    if type(shape) is not list or not shape or any(type(d) is not int or d < 0 for d in shape):
        raise InvalidInput(
            f"input '{cut(name)}' needs \"shape\": a list of non-negative integers, got {quote(shape)}"
        )
    return math.prod(shape)


def from_raw(name: str, datatype: str, raw: bytes | memoryview, count: int) -> np.ndarray:
    """A tensor from raw little-endian bytes (BYTES: each element a 4-byte length and UTF-8 text)."""
    if datatype == "BYTES":
        values: list[str] = []
        pos, end = 0, len(raw)
        while pos < end:
            if pos + 4 > end:
                raise InvalidInput(f"input '{cut(name)}' BYTES data is truncated")
            (n,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + n > end:
                raise InvalidInput(f"input '{cut(name)}' BYTES data is truncated")
            values.append(utf8_text(name, bytes(raw[pos : pos + n])))
            pos += n
        if len(values) != count:
            raise InvalidInput(
                f"input '{cut(name)}' has {len(values)} BYTES elements, its shape says {count}"
            )
        return np.array(values, dtype=object)
    dtype = NUMPY_DTYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(
            f"input '{cut(name)}' has {len(raw)} bytes of {datatype} data, "
            f"its shape needs {count * dtype.itemsize}"
        )
    return np.frombuffer(raw, dtype=dtype)


def utf8_text(name: str, b: bytes) -> str:
    """One BYTES element as text (string features are text)."""
    try:
        return b.decode()
    except UnicodeDecodeError:
        raise InvalidInput(f"input '{cut(name)}' has BYTES that are not UTF-8 text") from None


def flatten(data: Any) -> list[Any]:
    if type(data) is not list:
        return [data]
    if not any(type(v) is list for v in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if type(v) is list:
                stack.append(iter(v))
                break
            flat.append(v)
        else:
            stack.pop()
    return flat


def from_values(name: str, datatype: str, data: Any, count: int) -> np.ndarray:
    """A tensor from a flat or nested list of values of ``datatype``."""
    values = flatten(data)
    if len(values) != count:
        raise InvalidInput(f"input '{cut(name)}' has {len(values)} values, its shape says {count}")
    types = {type(v) for v in values}
    if datatype == "BYTES":
        if not types <= {str}:
            bad = next(v for v in values if type(v) is not str)
            raise InvalidInput(
                f"input '{cut(name)}' is BYTES: every value must be a string, got {json_type(bad)}"
            )
        return np.array(values, dtype=object)
    if datatype == "BOOL":
        if not types <= {bool}:
            bad = next(v for v in values if type(v) is not bool)
            raise InvalidInput(
                f"input '{cut(name)}' is BOOL: every value must be true or false, got {json_type(bad)}"
            )
        return np.array(values, dtype=np.bool_)
    allowed = {int, float} if datatype.startswith("FP") else {int}
    if not types <= allowed:
        bad = next(v for v in values if type(v) not in allowed)
        kind = "a number" if datatype.startswith("FP") else "an integer"
        raise InvalidInput(
            f"input '{cut(name)}' is {datatype}: every value must be {kind}, "
            f"got {json_type(bad)} {quote(bad)}"
        )
    return from_numbers(name, datatype, values, count)


def from_numbers(name: str, datatype: str, values: Sequence[Any], count: int) -> np.ndarray:
    """A numeric or BOOL tensor from a flat sequence whose values are already of the datatype's kind
    (checked by ``from_values``, or typed by the wire as gRPC's repeated fields are)."""
    if len(values) != count:
        raise InvalidInput(f"input '{cut(name)}' has {len(values)} values, its shape says {count}")
    try:
        return np.array(values, dtype=NUMPY_DTYPES[datatype])
    except (OverflowError, ValueError) as e:
        raise InvalidInput(f"input '{cut(name)}' has values that do not fit {datatype}: {e}") from None


def rows(tensors: dict[str, np.ndarray], schema: InputSchema) -> Rows:
    """The model's rows from the decoded input tensors, by name (one 2-D tensor or one per feature)."""
    if len(tensors) == 1:
        ((name, arr),) = tensors.items()
        if arr.ndim == 2 and not (name in schema.name_set and arr.shape[1] == 1 and schema.width > 1):
            if arr.dtype == object:
                raise InvalidInput(
                    f"input '{cut(name)}' is a 2-D BYTES tensor: send one tensor per feature instead"
                )
            return schema.from_matrix(arr)
    columns: dict[str, np.ndarray] = {}
    for name, arr in tensors.items():
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise InvalidInput(
                f"input '{cut(name)}' has shape {list(arr.shape)}: a per-feature input must have shape "
                "[rows] or [rows, 1], or send a single [rows, features] tensor"
            )
        columns[name] = arr
    return schema.from_columns(columns)


def requested_outputs(outputs: Any) -> tuple[tuple[str, ...] | None, frozenset[str]]:
    if outputs is None:
        return None, frozenset()
    if type(outputs) is not list:
        raise InvalidInput('"outputs" must be a list')
    names: list[str] = []
    binary: set[str] = set()
    for out in outputs:
        name = check_output(out.get("name") if type(out) is dict else None)
        names.append(name)
        params = out.get("parameters") or {}
        if type(params) is dict and params.get("binary_data") is True:
            binary.add(name)
    return tuple(names), frozenset(binary)


def check_output(name: Any) -> str:
    """A requested output's name, if it is one this server returns."""
    if name not in OUTPUTS:
        raise InvalidInput(f"unknown output {quote(name)}: this server returns {', '.join(OUTPUTS)}")
    return str(name)


def wants_probabilities(req: InferRequest, meta: Metadata, default: bool) -> bool:
    if req.outputs is not None:
        return "probabilities" in req.outputs
    flag = req.parameters.get("return_probabilities")
    if flag is not None:
        if type(flag) is not bool:
            raise InvalidInput("parameter return_probabilities must be true or false")
        return flag
    return default and meta.has_predict_proba


# ---- response ---------------------------------------------------------------------------------


def _label_datatype(meta: Metadata) -> str:
    if meta.task == "regressor":
        return "FP64"
    return _classes_datatype(meta)


def _classes_datatype(meta: Metadata) -> str:
    classes = meta.classes or ()
    if all(type(c) is bool for c in classes):
        return "BOOL"
    if all(type(c) is int for c in classes):
        return "INT64"
    if all(type(c) in (int, float) for c in classes):
        return "FP64"
    return "BYTES"


def output_tensors(meta: Metadata, req: InferRequest, prediction: Prediction) -> list[OutputTensor]:
    """The outputs the request asked for (by default predictions, and probabilities with classes when
    they were computed), in the order it asked."""
    names = req.outputs
    if names is None:
        names = ("predictions",) + (
            ("probabilities", "classes") if prediction.probabilities is not None else ()
        )
    label_type = _label_datatype(meta)
    tensors: dict[str, OutputTensor] = {}
    preds = prediction.predictions
    tensors["predictions"] = OutputTensor(
        "predictions", label_type, [len(preds)], _as_datatype(label_type, preds)
    )
    if prediction.probabilities is not None:
        proba = prediction.probabilities
        classes = np.asarray(meta.classes or (), dtype=object)
        ctype = _classes_datatype(meta)
        tensors["probabilities"] = OutputTensor("probabilities", "FP64", list(proba.shape), proba)
        tensors["classes"] = OutputTensor("classes", ctype, [len(classes)], _as_datatype(ctype, classes))
    elif "classes" in names and meta.classes is not None:
        classes = np.asarray(meta.classes, dtype=object)
        ctype = _classes_datatype(meta)
        tensors["classes"] = OutputTensor("classes", ctype, [len(classes)], _as_datatype(ctype, classes))
    missing = next((name for name in names if name not in tensors), None)
    if missing is not None:
        raise InvalidInput(f"output '{missing}' is not available for this model")
    return [tensors[name] for name in names]


def _as_datatype(datatype: str, values: np.ndarray) -> np.ndarray:
    if datatype == "BYTES":
        return np.asarray([str(v) for v in values.tolist()], dtype=object)
    if datatype == "BOOL":
        return np.asarray(values, dtype=np.bool_)
    return np.asarray(values, dtype=NUMPY_DTYPES[datatype])


def to_raw(datatype: str, arr: np.ndarray) -> bytes:
    if datatype == "BYTES":
        parts = []
        for v in arr.ravel().tolist():
            b = str(v).encode()
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=NUMPY_DTYPES[datatype]).tobytes()
