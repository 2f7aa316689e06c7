"""Run the app under uvicorn (one worker per process: scale with pods) with a graceful SIGTERM.

SIGTERM: readiness turns 503 at once; the listener stays open and accepted requests finish (new
ones are still served, for the moments before the endpoint is removed); once no prediction is in
flight uvicorn stops, then the model is released and the process exits 0, all within
SHUTDOWN_GRACE_SECONDS. A second SIGINT forces exit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from types import FrameType

import uvicorn

from ..runtime.lifecycle import ModelRuntime
from ..settings import Settings
from .app import create_app
from .middleware import InFlight

log = logging.getLogger("model_server.server")

# Time kept back from the grace period for uvicorn to close connections and for the model release.
_CLOSE_MARGIN_SECONDS = 1.0


class _Server(uvicorn.Server):
    def __init__(
        self, config: uvicorn.Config, runtime: ModelRuntime, in_flight: InFlight, grace: float
    ) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.in_flight = in_flight
        self.grace = grace
        self.draining = False
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

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
        while self.in_flight.count > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.in_flight.count:
            log.warning(
                "grace period over with requests in flight", extra={"in_flight": self.in_flight.count}
            )
        remaining = self.grace - (time.monotonic() - start)
        self.config.timeout_graceful_shutdown = max(1, int(remaining - 0.5))
        self.should_exit = True


def serve(settings: Settings) -> int:
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        workers=1,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(max(1, settings.shutdown_grace_seconds)),
    )
    server = _Server(config, app.state.runtime, app.state.in_flight, settings.shutdown_grace_seconds)
    server.run()
    log.info("stopped")
    return 0 if server.started or server.draining else 1
