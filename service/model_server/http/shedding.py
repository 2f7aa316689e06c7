"""Refusals before the ASGI app runs: uvicorn's HTTP protocol with the overload checks moved into it.

Under overload most prediction requests are refused, and a refusal made by the app costs nearly what
an answer costs (make bench-overload, single-row requests): the ASGI scope and task, the middleware,
the request id, the JSON error built by Starlette, the access log line. For requests this cheap the
server then spends its core refusing, and the accepted rate falls the harder it is pushed. So the
protocol decides as soon as a request's headers are parsed, before its body is read and before any
task exists: a prediction POST that the in-flight limit or the batch queue would refuse
(``Limits._precheck``, ``ModelRuntime.admits``) is answered at once with the same 429, the same JSON
error and ``Retry-After`` the middleware would write, counted in the same metrics. Everything else,
and every request that needs a closer look (authentication failing, an escaped path, a pipelined
request behind one still being answered), goes the usual way; the middleware's own checks stay,
unchanged, behind this one.

Logging: the first ``LOGGED_REFUSALS_PER_SECOND`` refusals of each second get their access log line
like any request (marked ``"refused_at": "headers"``); past that, one line a second says how many
more were refused. Every refusal is counted in the metrics like any other. A flood must not turn
into a flood of log lines: at 16x the load that is tens of thousands of lines a second, each costing
the server about as much as the refusal itself, and the log pipeline more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..auth import TokenFile
from ..errors import Overloaded, cut, over_in_flight, over_queue
from ..metrics import Metrics
from ..runtime.lifecycle import ModelRuntime
from ..settings import Settings
from .endpoints import Endpoint, classify
from .middleware import LOGGED_PATH_CHARS, InFlight, new_request_id, valid_request_id

log = logging.getLogger("model_server.access")

# Refusals logged one by one in each second; the rest are counted in one line a second (see above).
# 100 lines a second tell an operator what is being refused and to whom, and cost ~1 % of a core.
LOGGED_REFUSALS_PER_SECOND = 100


class Shedder:
    """The overload checks of the HTTP middleware (in-flight limit, batch queue), asked when a
    request's headers are complete; ``refusal`` returns the whole answer, or None to go on."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        in_flight: InFlight,
        runtime: ModelRuntime,
        tokens: TokenFile | None,
    ) -> None:
        self.max_in_flight = settings.max_in_flight
        self.metrics = metrics
        self.in_flight = in_flight
        self.runtime = runtime
        self.tokens = tokens
        self.refused = 0  # refusals made here (tests, the bench)
        # The two refusals, message and JSON body, built once: the limits do not change.
        self._full = self._refusal(over_in_flight(settings.max_in_flight))
        self._queue_full = self._refusal(over_queue(settings.batch_queue_rows))
        self._series: dict[Endpoint, tuple[Any, Any]] = {}
        self._overloaded = metrics.prediction_errors.labels(kind="overloaded")
        self._second = 0
        self._logged = 0
        self._unlogged = 0

    def refusal(
        self,
        method: bytes,
        url: bytes,
        headers: list[tuple[bytes, bytes]],
        state: dict[str, Any],
        keep_alive: bool,
        server_headers: bytes = b"",
    ) -> bytes | None:
        """The whole 429 answer for a prediction request to refuse now, else None (the request goes
        on to the app; one admitted here is marked in ``state``, the scope's state, for Limits).
        ``server_headers``: the lines uvicorn adds to every answer (the date)."""
        if method != b"POST":
            return None
        path_bytes = url.partition(b"?")[0]
        if b"%" in path_bytes:  # escaped: let uvicorn unquote it and the app classify it
            return None
        path = path_bytes.decode("latin-1")
        endpoint = classify(path)
        state["endpoint"] = endpoint  # what middleware.endpoint_of would compute again
        if not endpoint.prediction:
            return None
        authorization = request_id = None
        for name, value in headers:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")
        # A caller without a valid token learns nothing, not even how busy we are: the app answers 401.
        if self.tokens is not None and not self.tokens.allows(authorization):
            return None
        ahead = self.in_flight.count + self.in_flight.pending
        if ahead >= self.max_in_flight:
            message, body = self._full
        elif not self.runtime.admits(ahead):
            message, body = self._queue_full
        else:
            # Admitted: counted until the middleware takes it over (Limits), so the requests of one
            # pass of the event loop, whose tasks have not started yet, are not all let in at once.
            self.in_flight.pending += 1
            state["admitted"] = True
            return None
        self.refused += 1
        if request_id is None or not valid_request_id(request_id):
            request_id = new_request_id()
        self._count(endpoint)
        self._log(request_id, path, endpoint, message)
        head = (
            b"HTTP/1.1 429 Too Many Requests\r\n%s"
            b"content-type: application/json\r\n"
            b"content-length: %d\r\n"
            b"retry-after: 1\r\n"
            b"x-request-id: %s\r\n" % (server_headers, len(body), request_id.encode("latin-1"))
        )
        return head + (b"\r\n" if keep_alive else b"connection: close\r\n\r\n") + body

    @staticmethod
    def _refusal(error: Overloaded) -> tuple[str, bytes]:
        return error.message, orjson.dumps({"error": error.message})

    def _count(self, endpoint: Endpoint) -> None:
        series = self._series.get(endpoint)
        if series is None:
            series = self._series[endpoint] = (
                self.metrics.requests.labels(protocol=endpoint.protocol, route=endpoint.template, code="429"),
                self.metrics.request_duration.labels(protocol=endpoint.protocol, route=endpoint.template),
            )
        series[0].inc()
        series[1].observe(0.0)  # answered as soon as its headers were read
        self._overloaded.inc()

    def _log(self, request_id: str, path: str, endpoint: Endpoint, message: str) -> None:
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._logged = second, 0
        if self._logged >= LOGGED_REFUSALS_PER_SECOND:
            if not self._unlogged:  # the first of a run: its count is written a second from now
                asyncio.get_running_loop().call_later(1.0, self._log_unlogged)
            self._unlogged += 1
            return
        self._logged += 1
        log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": "POST",
                "path": cut(path, LOGGED_PATH_CHARS),
                "status": 429,
                "duration_ms": 0.0,
                "protocol": endpoint.protocol,
                "error": message,
                "refused_at": "headers",  # by the protocol, before the body was read
            },
        )

    def _log_unlogged(self) -> None:
        log.info(
            "refusals without a log line of their own",
            extra={"refused": self._unlogged, "status": 429, "refused_at": "headers", "seconds": 1},
        )
        self._unlogged = 0


def shedding_protocol(shedder: Shedder) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, asking ``shedder`` about each request once its headers are in."""

    class SheddingProtocol(HttpToolsProtocol):
        _shed = False  # the current request was refused: skip its body

        def keep_alive_allowed(self) -> bool:
            """Whether an answer may keep the connection open (not while draining: drain.py)."""
            return True

        def on_headers_complete(self) -> None:
            previous = self.cycle
            # Only with no answer still being written on this connection: a refusal must not overtake
            # the answer to a pipelined request before it.
            if previous is None or previous.response_complete:
                keep_alive = (
                    self.parser.get_http_version() != "1.0"
                    and self.parser.should_keep_alive()
                    and self.keep_alive_allowed()
                )
                server_headers = b"".join(
                    b"%s: %s\r\n" % (name, value) for name, value in self.server_state.default_headers
                )
                answer = shedder.refusal(
                    self.parser.get_method(),
                    self.url,
                    self.headers,
                    self.scope["state"],
                    keep_alive,
                    server_headers,
                )
                if answer is not None:
                    self._shed = True
                    self.transport.write(answer)
                    if not keep_alive:
                        self.transport.close()
                    return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._shed:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self._shed:
                super().on_message_complete()
                return
            self._shed = False
            # As after any answer: count it, read on, and arm the keep-alive timeout.
            self.on_response_complete()

    return SheddingProtocol
