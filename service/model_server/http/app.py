"""The FastAPI application factory: wires settings, metrics and the runtime to the routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from prometheus_client import disable_created_metrics
from starlette.exceptions import HTTPException
from starlette.responses import Response

from .. import __version__
from ..auth import TokenFile
from ..errors import ClientError, cut
from ..metrics import Metrics
from ..runtime.lifecycle import ModelRuntime
from ..settings import Settings
from .docs import install_docs
from .endpoints import OPENAPI_URL
from .fastpath import FastPredict
from .middleware import AccessLog, InFlight, Limits
from .openapi import install_openapi
from .responses import error_response, json_response
from .routes import router

log = logging.getLogger("model_server.http")


def create_app(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    runtime: ModelRuntime | None = None,
    bundle_path: Path | None = None,
) -> FastAPI:
    """Build the app. The model loads in the background from lifespan startup, unless the caller
    passes a runtime it manages itself."""
    # *_created series double the scrape for no use here; METRIC_NAMES does not list them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics = metrics if metrics is not None else Metrics()
    owns_runtime = runtime is None
    rt = runtime if runtime is not None else ModelRuntime(settings, metrics, bundle_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owns_runtime:
            rt.start_loading()
        yield
        if owns_runtime:
            rt.close()

    app = FastAPI(
        title="model-server",
        version=__version__,
        description="Predictions from a scikit-learn model bundle: named features, Open Inference Protocol "
        "(V2) and KServe V1.",
        lifespan=lifespan,
        docs_url=None,  # docs.py serves /docs with its own copy of Swagger UI
        openapi_url=OPENAPI_URL,
        redoc_url=None,
        # FastAPI's OpenTelemetry hook asks for the global providers on every request (~8 us); this
        # server exports Prometheus metrics and no spans, so the hook only costs (make bench profile).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.runtime = rt
    app.state.in_flight = InFlight()
    app.include_router(router)

    @app.exception_handler(ClientError)
    async def client_error(request: Request, exc: ClientError) -> Response:
        return error_response(request.scope, exc, metrics)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        # Unknown paths and methods: same {"error": ...} shape as every other error.
        message = {
            404: f"no endpoint {cut(request.url.path)}",
            405: f"{cut(request.method)} is not allowed on {cut(request.url.path)}",
        }.get(exc.status_code, str(exc.detail))
        # Not counted in prediction_errors: a scanner probing paths is not a failed prediction.
        request.state.error = message
        return json_response({"error": message}, exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not the client: log the traceback, answer without one.
        log.error("unhandled error", exc_info=exc)
        metrics.prediction_errors.labels(kind="model_error").inc()
        request.state.error = f"internal error: {type(exc).__name__}"
        return json_response(
            {
                "error": "internal server error; the server log has the details "
                f"(request id {getattr(request.state, 'request_id', '?')})"
            },
            500,
        )

    install_openapi(app)
    install_docs(app)
    app.add_middleware(FastPredict)  # innermost: after the limits, before FastAPI's router (fastpath.py)
    tokens = TokenFile(settings.auth_tokens_file) if settings.auth_tokens_file is not None else None
    app.state.tokens = tokens  # the protocol's overload check asks them too (shedding.py)
    app.add_middleware(
        Limits, settings=settings, metrics=metrics, in_flight=app.state.in_flight, runtime=rt, tokens=tokens
    )
    app.add_middleware(AccessLog, metrics=metrics, log_bodies=settings.log_request_bodies)
    return app
