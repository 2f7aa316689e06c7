"""The Open Inference Protocol's REST binding, ``POST /v2/models/{name}[/versions/{version}]/infer``
(pure: body bytes <-> rows, no I/O). The protocol's own rules (datatypes, shapes, tensors to rows,
outputs) are in oip.py.

Tensor data comes as JSON (flat or nested, row-major) or, with the binary tensor data extension that
``tritonclient`` uses by default, as raw little-endian bytes after the JSON header
(``Inference-Header-Content-Length``). Outputs are returned as binary data when the request asks for
it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInput, cut, quote, quote_names
from ..features import InputSchema, json_type
from ..types import Metadata, Prediction
from . import oip
from .codec import Decoded, Encoded, Options
from .oip import InferRequest
from .wire import dumps, parse_json

HEADER_LENGTH = "Inference-Header-Content-Length"
_INPUT_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})


class V2Codec:
    protocol = "v2"
    # Stock Open Inference Protocol clients (tritonclient) send no content type, and binary tensor
    # data is raw bytes after the JSON header.
    content_types = frozenset({"", "application/json", "application/octet-stream"})

    def decode(self, body: bytes, options: Options, schema: InputSchema, meta: Metadata) -> Decoded:
        raw = options.header_length
        if raw is not None and not raw.strip().isdigit():
            raise InvalidInput(f"{HEADER_LENGTH} must be a byte count, got {quote(raw)}")
        req = decode(body, int(raw) if raw else None, schema)
        return Decoded(req.rows, oip.wants_probabilities(req, meta, options.default_probabilities), req)

    def encode(self, meta: Metadata, decoded: Decoded, prediction: Prediction) -> Encoded:
        body, header_length = encode(meta, decoded.request, prediction)
        if header_length is None:
            return Encoded(body)
        return Encoded(body, "application/octet-stream", {HEADER_LENGTH: str(header_length)})


CODEC = V2Codec()


def decode(body: bytes, header_length: int | None, schema: InputSchema) -> InferRequest:
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise InvalidInput(
                f"Inference-Header-Content-Length is {header_length} but the body has {len(body)} bytes"
            )
        header, binary = body[:header_length], memoryview(body)[header_length:]
    else:
        header, binary = body, memoryview(b"")
    data = parse_json(header)
    if type(data) is not dict:
        raise InvalidInput(f"the inference request must be a JSON object, got {json_type(data)}")
    unknown = sorted(set(data) - {"id", "inputs", "outputs", "parameters"})
    if unknown:
        raise InvalidInput(f"unknown field(s) in the inference request: {quote_names(unknown)}")
    req_id = data.get("id")
    if req_id is not None and type(req_id) is not str:
        raise InvalidInput(f'"id" must be a string, got {json_type(req_id)}')
    parameters = data.get("parameters") or {}
    if type(parameters) is not dict:
        raise InvalidInput(f'"parameters" must be an object, got {json_type(parameters)}')
    inputs = data.get("inputs")
    if type(inputs) is not list or not inputs:
        raise InvalidInput('"inputs" must be a non-empty list of tensors')

    offset = 0
    tensors: dict[str, np.ndarray] = {}
    for i, spec in enumerate(inputs):
        arr, used = _tensor(i, spec, binary, offset)
        offset += used
        if spec["name"] in tensors:
            raise InvalidInput(f"input '{cut(spec['name'])}' is given twice")
        tensors[spec["name"]] = arr
    if offset != len(binary):
        raise InvalidInput(f"the body has {len(binary) - offset} bytes of binary data that no input claims")

    rows = oip.rows(tensors, schema)
    outputs, binary_outputs = oip.requested_outputs(data.get("outputs"))
    return InferRequest(
        id=req_id,
        rows=rows,
        outputs=outputs,
        binary_outputs=binary_outputs,
        binary_default=parameters.get("binary_data_output") is True,
        parameters=parameters,
    )


def _tensor(i: int, spec: Any, binary: memoryview, offset: int) -> tuple[np.ndarray, int]:
    if type(spec) is not dict:
        raise InvalidInput(f"input {i} must be an object with name, shape, datatype and data")
    name = spec.get("name")
    if type(name) is not str or not name:
        raise InvalidInput(f'input {i} has no "name"')
    unknown = sorted(set(spec) - _INPUT_KEYS)
    if unknown:
        raise InvalidInput(f"input '{cut(name)}' has unknown field(s): {quote_names(unknown)}")
    datatype = oip.check_datatype(name, spec.get("datatype"))
    shape = spec.get("shape")
    count = oip.element_count(name, shape)
    params = spec.get("parameters") or {}
    if type(params) is not dict:
        raise InvalidInput(f"input '{cut(name)}' \"parameters\" must be an object")
    size = params.get("binary_data_size")
    if size is not None:
        if "data" in spec:
            raise InvalidInput(f"input '{cut(name)}' has both \"data\" and binary_data_size: send one")
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise InvalidInput(
                f"input '{cut(name)}' binary_data_size {quote(size)} runs past the {len(binary)} bytes "
                "of binary data"
            )
        raw = binary[offset : offset + size]
        arr = oip.from_raw(name, datatype, raw, count)
        used = size
    else:
        if "data" not in spec:
            raise InvalidInput(f"input '{cut(name)}' has no \"data\"")
        arr = oip.from_values(name, datatype, spec["data"], count)
        used = 0
    return arr.reshape(shape), used


def encode(meta: Metadata, req: InferRequest, prediction: Prediction) -> tuple[bytes, int | None]:
    """The response body, and the JSON header length when binary outputs follow it."""
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for tensor in oip.output_tensors(meta, req, prediction):
        arr = tensor.data
        out: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if req.binary_default or tensor.name in req.binary_outputs:
            raw = oip.to_raw(tensor.datatype, arr)
            out["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            out["data"] = arr.ravel() if arr.dtype != object else arr.ravel().tolist()
        outputs.append(out)
    body: dict[str, Any] = {"model_name": meta.name, "model_version": meta.version}
    if req.id is not None:
        body["id"] = req.id
    body["outputs"] = outputs
    header = dumps(body)
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)
