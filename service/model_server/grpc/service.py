"""The handlers of ``inference.GRPCInferenceService`` and ``grpc.health.v1.Health``, and the one table of
gRPC methods: route label, protocol label, whether it is a prediction, and its handler.

Handlers take and return serialized messages (no deserializer in grpc): a message that does not parse
is the client's mistake and gets INVALID_ARGUMENT with the parser's words, where grpc's own
deserializer would answer INTERNAL. Every call gets the HTTP layer's treatment: one `request` log line,
the request metrics (protocol `grpc`, the method as its route), and for ModelInfer the bearer token,
the in-flight limit, the message size and the deadline, with the shared errors' messages.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health_pb2

from ..auth import TokenFile, Unauthorized
from ..errors import (
    ClientError,
    DeadlineExceeded,
    NotFound,
    NotReady,
    cut,
    over_deadline,
    over_in_flight,
    over_queue,
    over_size,
    quote,
)
from ..metrics import Metrics
from ..protocols import v2_grpc
from ..runtime.lifecycle import ModelRuntime, State
from ..settings import Settings
from .status import CANCELLED, CLIENT_DEADLINE, grpc_status

log = logging.getLogger("model_server.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
HEALTH_SERVICE = "grpc.health.v1.Health"
# The services a health check may name ("" is the server as a whole): each is SERVING once the model is
# ready, NOT_SERVING while it loads, failed or drains.
HEALTH_NAMES = frozenset({"", v2_grpc.SERVICE})


class InFlightCounter(Protocol):
    """The prediction requests in progress, shared with the HTTP layer: one MAX_IN_FLIGHT for both
    transports, and the shutdown drain waits for both."""

    count: int


Handler = Callable[[bytes, Any], Awaitable[bytes]]


@dataclass(frozen=True)
class Method:
    service: str
    name: str
    protocol: str  # the request metrics' `protocol`: grpc, or ops for health checks
    prediction: bool

    @property
    def route(self) -> str:
        """The request metrics' `route`: the method's full name, as on the wire."""
        return f"/{self.service}/{self.name}"


def _m(name: str, prediction: bool = False) -> Method:
    return Method(v2_grpc.SERVICE, name, "grpc", prediction)


METHODS: tuple[Method, ...] = (
    _m("ServerLive"),
    _m("ServerReady"),
    _m("ModelReady"),
    _m("ServerMetadata"),
    _m("ModelMetadata"),
    _m("ModelInfer", prediction=True),
    Method(HEALTH_SERVICE, "Check", "ops", False),
)
ROUTES = tuple(m.route for m in METHODS)


class _Answer(Exception):
    """A finished call that is not OK: its gRPC status, details and the metrics' HTTP-like code."""

    def __init__(self, code: grpc.StatusCode, details: str, http_status: int) -> None:
        super().__init__(details)
        self.code, self.details, self.http_status = code, details, http_status


class Servicer:
    def __init__(
        self, settings: Settings, runtime: ModelRuntime, metrics: Metrics, in_flight: InFlightCounter
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.metrics = metrics
        self.in_flight = in_flight
        self.tokens = TokenFile(settings.auth_tokens_file) if settings.auth_tokens_file is not None else None
        # Labelled series per (route, code), looked up once (labels() takes a lock per call).
        self._series: dict[tuple[Method, int], tuple[Any, Any]] = {}
        # A new request id: random per process, then counted (os.urandom per call cost ~15 us under load,
        # make bench profile); unique within the process and across restarts.
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count(1)

    def handlers(self) -> dict[Method, Handler]:
        by_name: dict[str, Callable[[bytes, Any], Awaitable[tuple[bytes, int | None]]]] = {
            "ServerLive": self._server_live,
            "ServerReady": self._server_ready,
            "ModelReady": self._model_ready,
            "ServerMetadata": self._server_metadata,
            "ModelMetadata": self._model_metadata,
            "ModelInfer": self._model_infer,
            "Check": self._health_check,
        }
        return {m: self._instrumented(m, by_name[m.name]) for m in METHODS}

    # ---- every call: log line, metrics, status ------------------------------------------------

    def _instrumented(
        self, method: Method, handler: Callable[[bytes, Any], Awaitable[tuple[bytes, int | None]]]
    ) -> Handler:
        async def call(body: bytes, context: Any) -> bytes:
            start = time.perf_counter()
            incoming = None
            for key, value in context.invocation_metadata() or ():
                if key == "x-request-id":
                    incoming = value
            request_id = incoming if isinstance(incoming, str) and _REQUEST_ID.match(incoming) else None
            if request_id is None:
                request_id = f"{self._id_prefix}-{next(self._ids):x}"
            context.set_trailing_metadata((("x-request-id", request_id),))
            status, code, error, rows = 200, grpc.StatusCode.OK, None, None
            try:
                answer, rows = await handler(body, context)
                return answer
            except ClientError as e:
                self.metrics.prediction_errors.labels(kind=e.kind).inc()
                status, code, error = e.status, grpc_status(e), e.message
            except _Answer as e:
                status, code, error = e.http_status, e.code, e.details
            except asyncio.CancelledError:
                # The client went away, or its deadline passed while we worked: grpc cancelled the call.
                status, code = CANCELLED, grpc.StatusCode.CANCELLED
                if context.time_remaining() is not None and context.time_remaining() <= 0:
                    status, code = CLIENT_DEADLINE, grpc.StatusCode.DEADLINE_EXCEEDED
                error = "the call ended before its answer: " + (
                    "the client's deadline passed" if status == CLIENT_DEADLINE else "the client cancelled it"
                )
                raise
            except Exception as e:
                # A bug, not the client: log the traceback, answer without one (as the HTTP layer does).
                logging.getLogger("model_server.grpc").error("unhandled error", exc_info=e)
                self.metrics.prediction_errors.labels(kind="model_error").inc()
                status, code, error = 500, grpc.StatusCode.INTERNAL, f"internal error: {type(e).__name__}"
            finally:
                self._record(method, start, request_id, status, code, error, rows)
            await context.abort(code, error)
            raise AssertionError("context.abort returns only by raising")

        return call

    def _record(
        self,
        method: Method,
        start: float,
        request_id: str,
        status: int,
        code: grpc.StatusCode,
        error: str | None,
        rows: int | None,
    ) -> None:
        elapsed = time.perf_counter() - start
        series = self._series.get((method, status))
        if series is None:
            labels = {"protocol": method.protocol, "route": method.route}
            series = self._series[(method, status)] = (
                self.metrics.requests.labels(**labels, code=str(status)),
                self.metrics.request_duration.labels(**labels),
            )
        series[0].inc()
        series[1].observe(elapsed)
        fields: dict[str, Any] = {
            "request_id": request_id,
            "method": "POST",
            "path": method.route,
            "status": status,
            "grpc_status": code.name,
            "duration_ms": round(elapsed * 1000, 3),
            "protocol": method.protocol,
        }
        if rows is not None:
            fields["rows"] = rows
        if error is not None:
            fields["error"] = error
        log.info("request", extra=fields)

    # ---- GRPCInferenceService -----------------------------------------------------------------

    async def _server_live(self, body: bytes, context: Any) -> tuple[bytes, int | None]:
        return v2_grpc.server_live(True), None

    async def _server_ready(self, body: bytes, context: Any) -> tuple[bytes, int | None]:
        return v2_grpc.server_ready(self.runtime.ready), None

    async def _model_ready(self, body: bytes, context: Any) -> tuple[bytes, int | None]:
        name, version = v2_grpc.parse_model_request(body)
        try:
            self.runtime.served_model(name, version)
        except (NotReady, NotFound):  # as Triton: not ready, rather than an error, for another model
            return v2_grpc.model_ready(False), None
        return v2_grpc.model_ready(self.runtime.ready), None

    async def _server_metadata(self, body: bytes, context: Any) -> tuple[bytes, int | None]:
        return v2_grpc.server_metadata(), None

    async def _model_metadata(self, body: bytes, context: Any) -> tuple[bytes, int | None]:
        name, version = v2_grpc.parse_model_request(body)
        return v2_grpc.model_metadata(self.runtime.served_model(name, version)), None

    async def _model_infer(self, body: bytes, context: Any) -> tuple[bytes, int | None]:
        s, rt = self.settings, self.runtime
        # Authentication first: a caller without a token learns nothing, not even how busy we are.
        if self.tokens is not None:
            header = next((v for k, v in context.invocation_metadata() or () if k == "authorization"), None)
            if not self.tokens.allows(header if isinstance(header, str) else None):
                raise Unauthorized()
        if rt.state is State.DRAINING:
            # Refused at once, so the client's retry (UNAVAILABLE is retryable) goes to another pod;
            # calls accepted before SIGTERM still finish.
            raise NotReady(f"the model is not ready: {rt.reason}")
        if self.in_flight.count >= s.max_in_flight:
            raise over_in_flight(s.max_in_flight)
        if not self.runtime.admits(self.in_flight.count):
            raise over_queue(s.batch_queue_rows)
        if len(body) > s.grpc_max_message_bytes:
            raise over_size(s.grpc_max_message_bytes, "GRPC_MAX_MESSAGE_BYTES", len(body))
        timeout = s.request_timeout_seconds
        remaining = context.time_remaining()
        client_deadline = remaining is not None and remaining < timeout
        if client_deadline:
            if remaining <= 0:
                raise DeadlineExceeded("the call's deadline had passed before the server could start on it")
            timeout = remaining
        self.in_flight.count += 1
        self.metrics.in_flight.inc()
        try:
            async with asyncio.timeout(timeout):
                msg = v2_grpc.parse_infer_request(body)
                meta = rt.served_model(msg.model_name, msg.model_version or None)
                decoded = v2_grpc.decode(msg, rt.require_schema(), meta, s.return_probabilities)
                prediction = await rt.predict(decoded.rows, proba=decoded.proba)
                return v2_grpc.encode(meta, decoded, prediction), len(decoded.rows)
        except TimeoutError:
            if client_deadline:
                raise DeadlineExceeded(
                    f"the call's deadline ({timeout:.3g} s left when it arrived) passed before the answer"
                ) from None
            raise over_deadline(s.request_timeout_seconds) from None
        finally:
            self.in_flight.count -= 1
            self.metrics.in_flight.dec()

    # ---- grpc.health.v1.Health ----------------------------------------------------------------

    async def _health_check(self, body: bytes, context: Any) -> tuple[bytes, int | None]:
        try:
            service = health_pb2.HealthCheckRequest.FromString(body).service
        except Exception as e:  # noqa: BLE001 - protobuf's DecodeError: the client's bytes
            raise _Answer(
                grpc.StatusCode.INVALID_ARGUMENT, f"not a HealthCheckRequest: {cut(str(e))}", 400
            ) from None
        if service not in HEALTH_NAMES:
            raise _Answer(
                grpc.StatusCode.NOT_FOUND,
                f"unknown service {quote(service)}: health is reported for '' and {v2_grpc.SERVICE}",
                404,
            )
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self.runtime.ready
            else (health_pb2.HealthCheckResponse.NOT_SERVING)
        )
        return health_pb2.HealthCheckResponse(status=status).SerializeToString(), None
