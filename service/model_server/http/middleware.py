"""Pure ASGI middleware (no per-request objects beyond what the work needs).

AccessLog (outermost): request id, one JSON log line and the request metrics for every request.
Limits: for prediction endpoints only, the in-flight limit (429), content type (415), body size
(413) and the deadline (504). Health, readiness and metrics never pass through these checks, so
they answer at once however busy the model is.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import TokenFile, Unauthorized
from ..errors import (
    Overloaded,
    PayloadTooLarge,
    UnsupportedMediaType,
    cut,
    over_deadline,
    over_in_flight,
    over_queue,
    over_size,
)
from ..metrics import Metrics
from ..runtime.lifecycle import ModelRuntime
from ..settings import Settings
from .endpoints import Endpoint, classify
from .responses import error_response

log = logging.getLogger("model_server.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
LOGGED_BODY_BYTES = 16 * 1024
# The request path in the log line: the client chooses it. Every path the server answers fits (the
# longest is the V2 versioned infer path with a 63-character name and version: 143 characters).
LOGGED_PATH_CHARS = 256


# A new request id: random per process, then counted, as over gRPC (grpc/service.py): unique within the
# process and across restarts, without a getrandom system call per request.
_ID_PREFIX = os.urandom(8).hex()
_IDS = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}-{next(_IDS):x}"


def valid_request_id(incoming: str) -> bool:
    """Whether a client's X-Request-ID is one to keep (1-128 characters of a safe set)."""
    return _REQUEST_ID.match(incoming) is not None


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-ID when it is a sane one, else a new id."""
    incoming = _header(scope, b"x-request-id")
    return incoming if incoming and valid_request_id(incoming) else new_request_id()


class InFlight:
    """Prediction requests being served now; the shutdown drain waits for this to reach zero.

    ``pending``: HTTP requests let in by the protocol's overload check (shedding.py) whose task has
    not reached Limits yet, where they are counted in ``count``."""

    def __init__(self) -> None:
        self.count = 0
        self.pending = 0


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def endpoint_of(scope: Scope) -> Endpoint:
    state = scope.setdefault("state", {})
    ep = state.get("endpoint")
    if ep is None:
        ep = state["endpoint"] = classify(scope["path"])
    return ep  # type: ignore[no-any-return]


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: Metrics, log_bodies: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.log_bodies = log_bodies
        # Labelled series per (endpoint, status), looked up once: labels() costs ~1 us a call under
        # a lock. Both keys come from small fixed sets, so this stays a handful of entries.
        self._series: dict[tuple[Endpoint, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        ep = endpoint_of(scope)
        request_id = request_id_of(scope)
        state = scope["state"]
        state["request_id"] = request_id
        status = 500
        body = bytearray()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        async def receive_logged() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < LOGGED_BODY_BYTES:
                body.extend(message.get("body", b"")[: LOGGED_BODY_BYTES - len(body)])
            return message

        try:
            await self.app(scope, receive_logged if self.log_bodies else receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            series = self._series.get((ep, status))
            if series is None:
                series = self._series[(ep, status)] = (
                    self.metrics.requests.labels(protocol=ep.protocol, route=ep.template, code=str(status)),
                    self.metrics.request_duration.labels(protocol=ep.protocol, route=ep.template),
                )
            series[0].inc()
            series[1].observe(elapsed)
            fields: dict[str, Any] = {
                "request_id": request_id,
                "method": scope["method"],
                "path": cut(scope["path"], LOGGED_PATH_CHARS),
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "protocol": ep.protocol,
            }
            if "rows" in state:
                fields["rows"] = state["rows"]
            if "error" in state:
                fields["error"] = state["error"]
            if self.log_bodies and body:
                fields["body"] = body.decode("utf-8", "replace")
            log.info("request", extra=fields)


class Limits:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        metrics: Metrics,
        in_flight: InFlight,
        runtime: ModelRuntime,
        tokens: TokenFile | None = None,
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.settings = settings
        self.metrics = metrics
        self.in_flight = in_flight
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not endpoint_of(scope).prediction:
            await self.app(scope, receive, send)
            return
        if scope["state"].pop("admitted", False):  # let in by the protocol (shedding.py): counted below
            self.in_flight.pending -= 1
        s = self.settings
        # Authentication first: a caller without a token learns nothing, not even how busy we are.
        error = self._authenticate(scope) or self._precheck(scope)
        if error is not None:
            await error_response(scope, error, self.metrics)(scope, receive, send)
            return
        limit = s.max_body_bytes
        received = 0
        started = False

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise over_size(limit, "MAX_BODY_BYTES")
            return message

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        self.in_flight.count += 1
        self.metrics.in_flight.inc()
        try:
            async with asyncio.timeout(s.request_timeout_seconds):
                await self.app(scope, receive_limited, send_tracking)
        except TimeoutError:
            if started:
                raise
            err = over_deadline(s.request_timeout_seconds)
            await error_response(scope, err, self.metrics)(scope, receive, send)
        finally:
            self.in_flight.count -= 1
            self.metrics.in_flight.dec()

    def _authenticate(self, scope: Scope) -> Unauthorized | None:
        if self.tokens is None or self.tokens.allows(_header(scope, b"authorization")):
            return None
        return Unauthorized()

    def _precheck(self, scope: Scope) -> Overloaded | UnsupportedMediaType | PayloadTooLarge | None:
        s = self.settings
        if self.in_flight.count >= s.max_in_flight:
            return over_in_flight(s.max_in_flight)
        if not self.runtime.admits(self.in_flight.count):
            return over_queue(s.batch_queue_rows)
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if content_type not in endpoint_of(scope).content_types:
            shown = cut(content_type) if content_type else "none"
            return UnsupportedMediaType(
                f"content type {shown} is not accepted here: send Content-Type: application/json"
            )
        length = _header(scope, b"content-length")
        # More than 18 digits is over any limit, and int() of thousands of digits raises: no number here.
        if length is not None and length.isdigit() and (len(length) > 18 or int(length) > s.max_body_bytes):
            return over_size(s.max_body_bytes, "MAX_BODY_BYTES", int(length) if len(length) <= 18 else None)
        return None
