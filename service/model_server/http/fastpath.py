"""Prediction POSTs go straight to their handler (handlers.predict), past FastAPI's router.

Measured (make bench, profile of a 1-row V2 infer under load): FastAPI matched every request against
each route in turn (a regular expression per route, ~25 routes) and then solved the endpoint's
parameters; that was about 40 % of the server's CPU per prediction. Prediction paths are fixed and the
middleware has already classified them (endpoints.py), so this ASGI layer calls the very handlers the
routes call, with the same error handling: ClientError -> its status and ``{"error": ...}`` through
the same ``error_response``; anything else propagates to the app's 500 handler, as from a route.
Both the routes and this layer are derived from the one endpoint table (endpoints.py).

The FastAPI routes stay: they document the endpoints in /docs and OpenAPI, and serve anything this
layer does not take. A route that gains a dependency (``Depends``: authentication, say) is never
short-cut: it is checked once, at the first request, and then always goes through FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ClientError
from . import handlers, routes
from .endpoints import PREDICTION_ROUTES, Route
from .middleware import endpoint_of
from .responses import error_response

Handler = Callable[[Request, str], Awaitable[Response]]


def _direct(route: Route) -> Handler:
    """The prediction handler called with the parameters of the (already classified) path."""
    codec, pattern = route.codec, route.pattern
    assert codec is not None

    async def call(request: Request, path: str) -> Response:
        match = pattern.match(path)
        assert match is not None  # the path was classified as this endpoint
        params = match.groupdict()
        return await handlers.predict(request, codec, params.get("name"), params.get("version"))

    return call


# endpoint template -> (the FastAPI route's endpoint function, the direct call)
_CANDIDATES: dict[str, tuple[Callable[..., object], Handler]] = {
    r.template: (routes.PREDICTION_ENDPOINTS[r.template], _direct(r)) for r in PREDICTION_ROUTES
}


def _short_cuts(app: ASGIApp) -> dict[str, Handler]:
    """The candidates whose FastAPI route is a plain POST at its own path with no dependencies to run."""
    router = getattr(app, "router", None)
    plain = _plain_posts(router, False, "") if router is not None else set()
    return {template: direct for template, (endpoint, direct) in _CANDIDATES.items() if endpoint in plain}


def _plain_posts(router: Any, inherited_deps: bool, prefix: str) -> set[object]:
    inherited_deps = inherited_deps or bool(getattr(router, "dependencies", None))
    out: set[object] = set()
    for route in router.routes:
        if isinstance(route, APIRoute):
            if (
                not inherited_deps
                and not prefix
                and route.methods == {"POST"}
                and not route.dependencies
                and not route.dependant.dependencies
            ):
                out.add(route.endpoint)
        elif hasattr(route, "original_router") and hasattr(route, "include_context"):
            # include_router(...): FastAPI keeps the included router and the include's own context.
            context = route.include_context
            out |= _plain_posts(
                route.original_router, inherited_deps or bool(context.dependencies), prefix + context.prefix
            )
    return out


class FastPredict:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._handlers: dict[str, Handler] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if self._handlers is None:
            self._handlers = _short_cuts(scope["app"])
        handler = self._handlers.get(endpoint_of(scope).template)
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await handler(request, scope["path"])
        except ClientError as exc:
            response = error_response(scope, exc, scope["app"].state.metrics)
        await response(scope, receive, send)
