"""JSON responses written with orjson, and the one error shape every protocol uses: {"error": "..."}."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Send

from ..errors import ClientError
from ..metrics import Metrics

JSON = "application/json"


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return raw_json(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), status, headers)


def raw_json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def error_headers(err: ClientError) -> dict[str, str]:
    # 429 and 503 are temporary: tell clients when retrying makes sense. 401 carries its challenge.
    headers = {"Retry-After": "1"} if err.status in (429, 503) else {}
    return headers | getattr(err, "headers", {})


def error_response(err: ClientError, metrics: Metrics) -> Response:
    metrics.prediction_errors.labels(kind=err.kind).inc()
    return json_response({"error": err.message}, err.status, error_headers(err))


async def send_error(send: Send, err: ClientError, metrics: Metrics) -> None:
    """The same error from ASGI middleware, before any route ran."""
    metrics.prediction_errors.labels(kind=err.kind).inc()
    body = orjson.dumps({"error": err.message})
    headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error_headers(err).items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
