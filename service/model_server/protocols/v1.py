"""The KServe V1 protocol, ``POST /v1/models/{name}:predict`` (pure: body bytes <-> rows, no I/O).

Request: ``{"instances": [[v1, v2, ...], ...]}`` with values in feature order (objects keyed by
feature name are accepted too). Response: ``{"predictions": [...]}``, plus ``"probabilities"``
(labelled with the classes) when asked for.
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
    if type(data) is not dict or "instances" not in data:
        raise InvalidInput('the body must be a JSON object {"instances": [[...], ...]}')
    extra = sorted(k for k in data if k != "instances")
    if extra:
        raise InvalidInput(f'unknown top-level key(s): {quote_names(extra)} (expected only "instances")')
    instances = data["instances"]
    if type(instances) is not list:
        raise InvalidInput(f'"instances" must be a list, got {json_type(instances)}')
    if instances and type(instances[0]) is dict:
        return schema.from_records(instances)
    return schema.from_lists(instances)


def encode(meta: Metadata, prediction: Prediction) -> bytes:
    out: dict[str, Any] = {"predictions": labels_to_json(prediction.predictions)}
    if prediction.probabilities is not None:
        classes = [str(c) for c in meta.classes or ()]
        out["probabilities"] = [
            dict(zip(classes, row, strict=True)) for row in prediction.probabilities.tolist()
        ]
    return dumps(out)


CODEC = JsonCodec("v1", decode, encode)
