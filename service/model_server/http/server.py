"""Run the app under uvicorn (one worker per process: scale with pods) with a graceful SIGTERM.

SIGTERM: readiness turns 503 at once; the listener stays open and accepted requests finish (new
ones are still served, for the moments before the endpoint is removed), each answer saying
`Connection: close` (drain.py: a kept-alive client moves to a new connection instead of having an idle
one closed under its next request); once no prediction is in flight and every connection left has been
idle for DRAIN_IDLE_SECONDS, uvicorn stops, then the model is released and the process exits 0, all
within SHUTDOWN_GRACE_SECONDS. A second SIGINT forces exit.

Companions are other listeners in the same process and event loop (the gRPC server): started before
the HTTP listener, stopped after the drain and before the model is released. Their prediction calls
count in the same in-flight counter, so the drain waits for them too.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Protocol

import uvicorn
from fastapi import FastAPI

from ..runtime.lifecycle import ModelRuntime
from ..settings import Settings
from .app import create_app
from .drain import Drain, draining_protocol
from .middleware import InFlight
from .shedding import Shedder, shedding_protocol

log = logging.getLogger("model_server.server")

# Time kept back from the grace period for uvicorn to close connections and for the model release.
_CLOSE_MARGIN_SECONDS = 1.0


class Companion(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _Server(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        runtime: ModelRuntime,
        in_flight: InFlight,
        grace: float,
        drain: Drain,
        companions: Sequence[Companion] = (),
    ) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.in_flight = in_flight
        self.grace = grace
        self.drain = drain
        self.companions = companions
        self.draining = False
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        for companion in self.companions:
            try:
                await companion.start()
            except RuntimeError as e:
                # As uvicorn does when its own port is taken: say why and exit 1.
                log.error("%s", e)
                sys.exit(1)
        await super().startup(sockets)  # type: ignore[arg-type]

    async def shutdown(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        for companion in self.companions:
            await companion.stop()
        await super().shutdown(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's handler: it would re-raise the signal after shutdown and the process would
        # die by SIGTERM instead of exiting 0.
        if self.draining:
            if sig == signal.SIGINT:
                self.force_exit = True
            return
        self.draining = True
        self.runtime.begin_drain()
        log.info(
            "shutdown requested: not ready any more, finishing in-flight requests",
            extra={"signal": signal.Signals(sig).name, "in_flight": self.in_flight.count},
        )
        if self.loop is None:
            self.should_exit = True
            return
        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self._drain()) if self.loop else None)

    async def _drain(self) -> None:
        start = time.monotonic()
        deadline = start + max(0.0, self.grace - _CLOSE_MARGIN_SECONDS)
        loop = asyncio.get_running_loop()
        connections = self.server_state.connections
        self.drain.begin(connections)
        while time.monotonic() < deadline and (
            self.in_flight.count > 0 or not self.drain.settled(connections, loop.time())
        ):
            await asyncio.sleep(0.02)
        if self.in_flight.count:
            log.warning(
                "grace period over with requests in flight", extra={"in_flight": self.in_flight.count}
            )
        elif not self.drain.settled(connections, loop.time()):
            log.warning(
                "grace period over with connections still in use", extra={"connections": len(connections)}
            )
        remaining = self.grace - (time.monotonic() - start)
        self.config.timeout_graceful_shutdown = max(1, int(remaining - 0.5))
        self.should_exit = True


def serve(settings: Settings, companions: Callable[[FastAPI], Sequence[Companion]] | None = None) -> int:
    """Serve until SIGTERM; ``companions`` builds the other listeners from the app (its runtime,
    metrics and in-flight counter are theirs too)."""
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
    app = create_app(settings)
    state = app.state
    shedder = Shedder(settings, state.metrics, state.in_flight, state.runtime, state.tokens)
    drain = Drain(settings.drain_idle_seconds)
    config = uvicorn.Config(
        app,
        # Overload is refused as soon as a request's headers are read, before the app (shedding.py);
        # after SIGTERM every answer closes its connection (drain.py).
        http=draining_protocol(shedding_protocol(shedder), drain),
        host=settings.host,
        port=settings.port,
        workers=1,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(max(1, settings.shutdown_grace_seconds)),
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]  # a float works
    )
    server = _Server(
        config,
        app.state.runtime,
        app.state.in_flight,
        settings.shutdown_grace_seconds,
        drain,
        companions(app) if companions is not None else (),
    )
    server.run()
    log.info("stopped")
    return 0 if server.started or server.draining else 1
