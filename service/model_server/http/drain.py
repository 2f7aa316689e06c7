"""Kept-alive HTTP connections through a shutdown, without closing one under a request.

A client that keeps connections alive (every HTTP library's pool) may send its next request on a
connection at any moment. If the server closes that connection while it is idle, the request the
client has just written meets a closed socket: a read error on the client's side, for a request the
server never saw. This is the one way a kept-alive client loses a request that no retry policy of the
server can prevent, and it happened under rolling updates when SIGTERM made uvicorn close every idle
connection at once (about 1 request in 22,000 on a real cluster).

So, after SIGTERM (``Drain.begin``):
- every request that arrives is still served, on open connections and on new ones (the listener stays
  open: a client may still reach this pod for the moments before its endpoint is removed);
- every answer says ``Connection: close`` and the connection is closed after it: the client opens its
  next request on a new connection, which the Service sends to a ready pod. A request already in the
  app whose answer has not started yet says so too;
- a connection is closed by the server only after such an answer, or once it has been idle for
  ``DRAIN_IDLE_SECONDS``: a client that has not used a connection for that long, while the pod had
  already been out of the endpoints for the preStop sleep, is not about to (``Drain.settled``);
- uvicorn's shutdown starts once no request is in flight and every connection left is settled, or at
  the end of the grace period (server.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class Drain:
    """Whether the server is draining, and how long a connection must be idle to be closed then."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self.active = False

    def begin(self, connections: Iterable[Any]) -> None:
        """From now on every answer closes its connection; answers not started yet included."""
        self.active = True
        for connection in connections:
            cycle = getattr(connection, "cycle", None)
            if cycle is not None and not cycle.response_started:
                cycle.keep_alive = False

    def settled(self, connections: Iterable[Any], now: float) -> bool:
        """No connection is answering a request, receiving one, or was used in the last
        ``idle_seconds``: closing the ones left cannot cut a request a client is sending."""
        return all(_idle_since(c, now) >= self.idle_seconds for c in connections)


class _Tracked(Protocol):
    last_activity: float
    cycle: Any


def _idle_since(connection: _Tracked, now: float) -> float:
    cycle = connection.cycle
    if cycle is not None and not cycle.response_complete:
        return 0.0
    return now - getattr(connection, "last_activity", now)


def draining_protocol(base: type[HttpToolsProtocol], drain: Drain) -> type[HttpToolsProtocol]:
    """``base`` (uvicorn's httptools protocol, or one derived from it) with the drain above: it records
    when each connection was last used and, while draining, answers with ``Connection: close``."""

    class DrainingProtocol(base):  # type: ignore[valid-type,misc]
        last_activity = 0.0

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.last_activity = self.loop.time()

        def data_received(self, data: bytes) -> None:
            self.last_activity = self.loop.time()
            super().data_received(data)

        def keep_alive_allowed(self) -> bool:
            return not drain.active

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            if drain.active and self.cycle is not None and not self.cycle.response_started:
                self.cycle.keep_alive = False

        def on_response_complete(self) -> None:
            self.last_activity = self.loop.time()
            super().on_response_complete()

    return DrainingProtocol
