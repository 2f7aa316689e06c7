"""The gRPC server beside the HTTP one: grpc.aio on the same event loop, started before the HTTP
listener and stopped before the model is released (http/server.py runs it as a companion).

Drain: on SIGTERM the runtime turns DRAINING, so health checks answer NOT_SERVING and new ModelInfer
calls UNAVAILABLE at once, while calls already accepted finish (the HTTP server's drain waits for the
shared in-flight count); ``stop`` then sends GOAWAY and closes.
"""

from __future__ import annotations

import logging

import grpc
from grpc_reflection.v1alpha import reflection

from ..metrics import Metrics
from ..protocols import v2_grpc
from ..runtime.lifecycle import ModelRuntime
from ..settings import Settings
from .service import HEALTH_SERVICE, METHODS, InFlightCounter, Servicer

log = logging.getLogger("model_server.grpc")

# Time stop() gives calls still running after the HTTP drain (which already waited for them).
_STOP_GRACE_SECONDS = 1.0


class GrpcServer:
    def __init__(
        self, settings: Settings, runtime: ModelRuntime, metrics: Metrics, in_flight: InFlightCounter
    ) -> None:
        self.settings = settings
        self.address = f"{settings.host}:{settings.grpc_port}"
        self.servicer = Servicer(settings, runtime, metrics, in_flight)
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        """Bind and start; RuntimeError naming GRPC_PORT when the address cannot be bound."""
        limit = self.settings.grpc_max_message_bytes
        server = grpc.aio.server(
            options=[
                # gRPC drops a message over this unread (RESOURCE_EXHAUSTED, its own words); up to it the
                # handler answers over GRPC_MAX_MESSAGE_BYTES with the shared message and a log line.
                ("grpc.max_receive_message_length", 2 * limit),
                ("grpc.max_send_message_length", -1),
                # One server per port: a second process on the same port must fail, not share it.
                ("grpc.so_reuseport", 0),
            ]
        )
        by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
        for method, handler in self.servicer.handlers().items():
            rpc = grpc.unary_unary_rpc_method_handler(handler)  # bytes in, bytes out: see service.py
            by_service.setdefault(method.service, {})[method.name] = rpc
        for service, handlers in by_service.items():
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        names = (v2_grpc.SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
        try:
            port = server.add_insecure_port(self.address)
        except RuntimeError as e:
            raise RuntimeError(f"cannot listen on {self.address} (GRPC_PORT): {e}") from None
        if port == 0:
            raise RuntimeError(f"cannot listen on {self.address} (GRPC_PORT): the port is taken")
        await server.start()
        self._server = server
        log.info("gRPC listening", extra={"address": self.address, "methods": len(METHODS)})

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(_STOP_GRACE_SECONDS)
            self._server = None
