"""JSON in and out, shared by the protocol codecs (pure functions, no I/O)."""

from __future__ import annotations

import json
from typing import Any

import orjson

from ..errors import InvalidInput

_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def parse_json(body: bytes) -> Any:
    """Parse a request body; the error names the position of the problem.

    orjson is strict JSON. Python's json module (and so ``requests(json=...)``) writes NaN and
    Infinity as bare words, so a body that orjson refuses gets a second, lenient parse: the feature
    checks then say exactly which value is NaN or infinite instead of a vague syntax error.
    """
    if not body:
        raise InvalidInput("the request body is empty: send a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as strict_error:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise InvalidInput(f"the body is not valid JSON: {strict_error}") from None


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=_DUMPS_OPTIONS)


def labels_to_json(values: Any) -> Any:
    """Predictions as something orjson writes natively (numeric arrays stay numpy: no per-row work)."""
    if getattr(values, "dtype", None) is not None and values.dtype.kind in "fiub":
        return values
    return values.tolist()
