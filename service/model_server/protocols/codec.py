"""What every prediction protocol provides to a transport: a codec from request bytes to rows and from a
prediction to response bytes.

A transport (the HTTP layer) finds the model, hands the codec the body and the few request options
that protocols define outside it (``Options``), awaits ``runtime.predict(decoded.rows,
proba=decoded.proba)`` and sends what ``encode`` returns. The codec raises the typed client errors
(errors.py) that the transport turns into its own error answer. Decoding rules that are not about one
wire format live below the codecs, where another transport reuses them: the feature checks in
``features.InputSchema``, the Open Inference Protocol's tensor rules in ``protocols.tensors``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import InvalidInput, quote
from ..features import InputSchema, Rows
from ..settings import parse_bool
from ..types import Metadata, Prediction

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Options:
    """Request options outside the body, as the client sent them (None: not sent)."""

    probabilities: str | None = None  # named and V1: the `probabilities` query parameter
    header_length: str | None = None  # V2: Inference-Header-Content-Length (binary tensor data)
    default_probabilities: bool = False  # RETURN_PROBABILITIES: when the request does not say


@dataclass(frozen=True, slots=True)
class Decoded:
    rows: Rows
    proba: bool  # the client wants class probabilities
    request: Any = None  # what ``encode`` needs again from the request (V2: ids and requested outputs)


@dataclass(frozen=True, slots=True)
class Encoded:
    body: bytes
    media_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


class Codec(Protocol):
    protocol: str  # the `protocol` label of the request metrics: named | v1 | v2
    content_types: frozenset[str]  # the request Content-Types it reads ("": none sent)

    def decode(self, body: bytes, options: Options, schema: InputSchema, meta: Metadata) -> Decoded: ...

    def encode(self, meta: Metadata, decoded: Decoded, prediction: Prediction) -> Encoded: ...


def probabilities_option(options: Options, meta: Metadata) -> bool:
    """The `probabilities` query parameter (true/false), else RETURN_PROBABILITIES for a model that has
    them."""
    raw = options.probabilities
    if raw is None:
        return options.default_probabilities and meta.has_predict_proba
    value = parse_bool(raw)
    if value is None:
        raise InvalidInput(f"query parameter probabilities={quote(raw)} must be true or false")
    return value


class JsonCodec:
    """A JSON protocol whose only option outside the body is `probabilities` (named features, V1)."""

    def __init__(
        self,
        protocol: str,
        decode: Callable[[bytes, InputSchema], Rows],
        encode: Callable[[Metadata, Prediction], bytes],
    ) -> None:
        self.protocol = protocol
        self.content_types = frozenset({JSON})
        self._decode = decode
        self._encode = encode

    def decode(self, body: bytes, options: Options, schema: InputSchema, meta: Metadata) -> Decoded:
        proba = probabilities_option(options, meta)  # the query first, as before the body is parsed
        return Decoded(self._decode(body, schema), proba)

    def encode(self, meta: Metadata, decoded: Decoded, prediction: Prediction) -> Encoded:
        return Encoded(self._encode(meta, prediction))
