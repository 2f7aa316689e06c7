"""The FastAPI routes, built from the endpoint table (endpoints.py).

They document every endpoint in /docs and OpenAPI and serve whatever the fast path (fastpath.py) does
not take. A prediction endpoint's function only binds its path parameters and hands the request to
``handlers.predict`` with the endpoint's codec.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..protocols.codec import Codec
from . import handlers
from .endpoints import ROUTES, Route

PredictionEndpoint = Callable[..., Awaitable[Response]]


def _prediction_endpoint(route: Route) -> PredictionEndpoint:
    """A function with exactly the template's path parameters, so FastAPI binds and documents them."""
    codec: Codec | None = route.codec
    assert codec is not None
    if route.params == ():

        async def endpoint(request: Request) -> Response:
            return await handlers.predict(request, codec, None, None)

        return endpoint
    if route.params == ("name",):

        async def endpoint_name(name: str, request: Request) -> Response:
            return await handlers.predict(request, codec, name, None)

        return endpoint_name
    if route.params == ("name", "version"):

        async def endpoint_version(name: str, version: str, request: Request) -> Response:
            return await handlers.predict(request, codec, name, version)

        return endpoint_version
    raise AssertionError(f"no endpoint function for the parameters of {route.template}")


# template -> the function FastAPI calls for that prediction endpoint (the fast path checks that its
# route is still this plain POST before it takes the endpoint over).
PREDICTION_ENDPOINTS: dict[str, PredictionEndpoint] = {
    r.template: _prediction_endpoint(r) for r in ROUTES if r.codec is not None
}

router = APIRouter()
for _route in ROUTES:
    router.add_api_route(
        _route.template,
        _route.handler or PREDICTION_ENDPOINTS[_route.template],
        methods=[_route.method],
        name=_route.name,
        summary=_route.summary,
        tags=[_route.tag],
    )
