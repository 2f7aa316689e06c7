"""Prediction POSTs go straight to their handler in routes.py, past FastAPI's router.

Measured (make bench, profile of a 1-row V2 infer under load): FastAPI matched every request against
each route in turn (a regular expression per route, ~25 routes) and then solved the endpoint's
parameters; that was about 40 % of the server's CPU per prediction. Prediction paths are fixed and the
middleware has already classified them (endpoints.py), so this ASGI layer calls the very handlers the
routes call, with the same error handling: ClientError -> its status and ``{"error": ...}`` through
the same ``error_response``; anything else propagates to the app's 500 handler, as from a route.

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
from . import routes
from .middleware import endpoint_of
from .responses import error_response

Handler = Callable[[Request, str], Awaitable[Response]]
_V1_PREFIX, _V1_SUFFIX = len("/v1/models/"), len(":predict")


async def _named(request: Request, path: str) -> Response:
    return await routes.predict(request)


async def _v1(request: Request, path: str) -> Response:
    return await routes.v1_predict(path[_V1_PREFIX:-_V1_SUFFIX], request)


async def _v2(request: Request, path: str) -> Response:
    return await routes.v2_infer(path.split("/")[3], request)


async def _v2_version(request: Request, path: str) -> Response:
    parts = path.split("/")  # /v2/models/{name}/versions/{version}/infer
    return await routes.v2_infer_version(parts[3], parts[5], request)  # type: ignore[no-any-return]


# endpoint template (endpoints.py) -> (the FastAPI route's endpoint function, the direct call)
_CANDIDATES: dict[str, tuple[Callable[..., object], Handler]] = {
    "/predict": (routes.predict, _named),
    "/v1/models/{name}:predict": (routes.v1_predict, _v1),
    "/v2/models/{name}/infer": (routes.v2_infer, _v2),
    "/v2/models/{name}/versions/{version}/infer": (routes.v2_infer_version, _v2_version),
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
            request.state.error = exc.message
            response = error_response(exc, scope["app"].state.metrics)
        await response(scope, receive, send)
