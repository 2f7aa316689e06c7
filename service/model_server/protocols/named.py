"""The named-feature JSON protocol of ``POST /predict`` (pure: body bytes <-> rows, no I/O).

Request: one record ``{"sepal_length": 5.1, ...}`` or ``{"instances": [{...}, ...]}``.
Response: ``{"model_name", "model_version", "predictions": [...]}`` and, when asked for,
``"probabilities": [{"<class>": p, ...}, ...]`` labelled with the model's classes.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput, quote_names
from ..features import InputSchema, Rows, json_type
from ..types import Metadata, Prediction
from .codec import JsonCodec
from .wire import dumps, labels_to_json, parse_json


def decode(body: bytes, schema: InputSchema) -> Rows:
    data = parse_json(body)
    if type(data) is not dict:
        raise InvalidInput(
            f'the body must be a JSON object (one record, or {{"instances": [...]}}), got {json_type(data)}'
        )
    if "instances" in data and "instances" not in schema.name_set:
        if len(data) != 1:
            extra = sorted(k for k in data if k != "instances")
            raise InvalidInput(
                f'with "instances", no other top-level keys are allowed, got: {quote_names(extra)}'
            )
        instances = data["instances"]
        if type(instances) is not list:
            raise InvalidInput(f'"instances" must be a list of records, got {json_type(instances)}')
        return schema.from_records(instances)
    return schema.from_records([data])


def encode(meta: Metadata, prediction: Prediction) -> bytes:
    out: dict[str, Any] = {
        "model_name": meta.name,
        "model_version": meta.version,
        "predictions": labels_to_json(prediction.predictions),
    }
    if prediction.probabilities is not None:
        classes = [str(c) for c in meta.classes or ()]
        out["probabilities"] = [
            dict(zip(classes, row, strict=True)) for row in prediction.probabilities.tolist()
        ]
    return dumps(out)


CODEC = JsonCodec("named", decode, encode)
