"""JSON responses written with orjson, and the one error shape every protocol uses: {"error": "..."}."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Scope

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


def error_response(scope: Scope, err: ClientError, metrics: Metrics) -> Response:
    """The one way a client error becomes an answer, from a route, the fast path or the middleware:
    its status, ``{"error": message}`` and headers. The message goes to the request's log line
    (middleware.AccessLog) and the kind to model_server_prediction_errors_total. From ASGI middleware,
    before any route ran, send it with ``await error_response(...)(scope, receive, send)``."""
    scope.setdefault("state", {})["error"] = err.message
    metrics.prediction_errors.labels(kind=err.kind).inc()
    return json_response({"error": err.message}, err.status, error_headers(err))
