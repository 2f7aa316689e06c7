"""The Open Inference Protocol's gRPC binding, ``inference.GRPCInferenceService`` (pure: message bytes
<-> rows, no I/O, no gRPC runtime). The protocol's own rules (datatypes, shapes, tensors to rows,
outputs) are in oip.py, shared with the REST binding (v2.py), so a mistake gets the same check and the
same message whichever way it came.

A tensor's values come either in its ``contents`` (the repeated field of its datatype: FP32 in
``fp32_contents``, BYTES in ``bytes_contents``, ...) or, for every input at once, in the request's
``raw_input_contents`` (one little-endian byte string per input, what ``tritonclient.grpc`` sends).
Outputs go back as ``raw_output_contents`` when the request sent raw inputs (as KServe's and Triton's
servers do, so a stock client reads them the way it wrote) or set the parameter
``binary_data_output``; otherwise in typed ``contents``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from ..errors import InvalidInput, cut
from ..features import InputSchema
from ..types import Metadata, Prediction
from . import oip
from .codec import Decoded
from .oip import InferRequest
from .proto import grpc_predict_v2_pb2 as pb

SERVICE = "inference.GRPCInferenceService"

# The InferTensorContents field that carries each datatype (FP16 has none: raw contents only).
CONTENTS_FIELD: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def parse_infer_request(body: bytes) -> pb.ModelInferRequest:
    """The ModelInferRequest in ``body``; InvalidInput when the bytes are not one."""
    try:
        return pb.ModelInferRequest.FromString(body)
    except DecodeError as e:
        raise InvalidInput(f"the message is not a valid ModelInferRequest: {cut(str(e))}") from None


def decode(
    msg: pb.ModelInferRequest, schema: InputSchema, meta: Metadata, default_probabilities: bool
) -> Decoded:
    """The rows of a ModelInferRequest, whether the client wants probabilities, and what ``encode``
    needs again (``Decoded.request``: the oip.InferRequest)."""
    inputs = msg.inputs
    if not inputs:
        raise InvalidInput('"inputs" must be a non-empty list of tensors')
    raw = msg.raw_input_contents
    if raw and len(raw) != len(inputs):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries for {len(inputs)} inputs: "
            "send one per input, in the order of the inputs"
        )
    tensors: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(inputs):
        name = tensor.name
        if not name:
            raise InvalidInput(f'input {i} has no "name"')
        datatype = oip.check_datatype(name, tensor.datatype)
        shape = list(tensor.shape)
        count = oip.element_count(name, shape)
        if raw:
            if tensor.contents.ListFields():
                raise InvalidInput(f"input '{cut(name)}' has both contents and raw_input_contents: send one")
            arr = oip.from_raw(name, datatype, raw[i], count)
        else:
            arr = _from_contents(name, datatype, tensor.contents, count)
        if name in tensors:
            raise InvalidInput(f"input '{cut(name)}' is given twice")
        tensors[name] = arr.reshape(shape)
    rows = oip.rows(tensors, schema)
    outputs = tuple(oip.check_output(o.name) for o in msg.outputs) if msg.outputs else None
    parameters = parameters_dict(msg.parameters)
    req = InferRequest(
        id=msg.id or None,
        rows=rows,
        outputs=outputs,
        binary_outputs=frozenset(),
        binary_default=bool(raw) or parameters.get("binary_data_output") is True,
        parameters=parameters,
    )
    return Decoded(rows, oip.wants_probabilities(req, meta, default_probabilities), req)


def _from_contents(name: str, datatype: str, contents: pb.InferTensorContents, count: int) -> np.ndarray:
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInput(
            f"input '{cut(name)}' is {datatype}, which has no contents field: send it in raw_input_contents"
        )
    # ListFields: only the fields that hold values, in one call.
    other = next((f.name for f, _ in contents.ListFields() if f.name != field), None)
    if other is not None:
        raise InvalidInput(
            f"input '{cut(name)}' is {datatype}: its values go in contents.{field}, not {other}"
        )
    values: Any = getattr(contents, field)
    if datatype == "BYTES":
        return oip.from_values(name, datatype, [oip.utf8_text(name, b) for b in values], count)
    return oip.from_numbers(name, datatype, values, count)


def parameters_dict(params: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    """Request parameters as plain values (an unset parameter is None)."""
    out: dict[str, Any] = {}
    for key, param in params.items():
        choice = param.WhichOneof("parameter_choice")
        out[key] = getattr(param, choice) if choice is not None else None
    return out


def encode(meta: Metadata, decoded: Decoded, prediction: Prediction) -> bytes:
    """The serialized ModelInferResponse: the outputs the request asked for, raw or typed."""
    req: InferRequest = decoded.request
    resp = pb.ModelInferResponse(model_name=meta.name, model_version=meta.version, id=req.id or "")
    for tensor in oip.output_tensors(meta, req, prediction):
        out = resp.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        if req.binary_default:
            resp.raw_output_contents.append(oip.to_raw(tensor.datatype, tensor.data))
        elif tensor.datatype == "BYTES":
            out.contents.bytes_contents.extend(str(v).encode() for v in tensor.data.ravel().tolist())
        else:
            getattr(out.contents, CONTENTS_FIELD[tensor.datatype]).extend(tensor.data.ravel().tolist())
    return resp.SerializeToString()


# ---- metadata and health ----------------------------------------------------------------------


def server_metadata() -> bytes:
    doc = oip.server_metadata()
    return pb.ServerMetadataResponse(
        name=doc["name"], version=doc["version"], extensions=doc["extensions"]
    ).SerializeToString()


def model_metadata(meta: Metadata) -> bytes:
    doc = oip.model_metadata(meta)
    tensor = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=doc["name"],
        versions=doc["versions"],
        platform=doc["platform"],
        inputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in doc["inputs"]],
        outputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in doc["outputs"]],
    ).SerializeToString()


def parse_model_request(body: bytes) -> tuple[str, str | None]:
    """(name, version or None) of a ModelReadyRequest or ModelMetadataRequest (the same fields)."""
    try:
        msg = pb.ModelReadyRequest.FromString(body)
    except DecodeError as e:
        raise InvalidInput(f"the message is not a valid model request: {cut(str(e))}") from None
    return msg.name, msg.version or None


def server_live(live: bool) -> bytes:
    return pb.ServerLiveResponse(live=live).SerializeToString()


def server_ready(ready: bool) -> bytes:
    return pb.ServerReadyResponse(ready=ready).SerializeToString()


def model_ready(ready: bool) -> bytes:
    return pb.ModelReadyResponse(ready=ready).SerializeToString()
