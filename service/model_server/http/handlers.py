"""The HTTP handlers, thin: find the model, hand the body to a protocol codec, await the runtime.

``predict`` is the one handler of every prediction endpoint; the endpoint table (endpoints.py) says
which codec each one uses. Nothing here touches the estimator.
"""

from __future__ import annotations

from fastapi import Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from ..errors import NotFound, NotReady, cut
from ..protocols import oip
from ..protocols.codec import Codec, Options
from ..protocols.v2 import HEADER_LENGTH
from ..runtime.lifecycle import ModelRuntime, State
from ..types import Metadata
from .responses import json_response


def runtime_of(request: Request) -> ModelRuntime:
    runtime: ModelRuntime = request.app.state.runtime
    return runtime


def served_model(runtime: ModelRuntime, name: str | None = None, version: str | None = None) -> Metadata:
    """The served model's metadata: 503 while not loaded, 404 for another name or version."""
    bundle = runtime.bundle
    if bundle is None or runtime.state not in (State.READY, State.DRAINING):
        raise NotReady(f"the model is not ready: {runtime.reason}")
    meta = bundle.metadata
    if name is not None and name != meta.name:
        raise NotFound(f"model '{cut(name)}' is not served here: this server serves '{meta.name}'")
    if version is not None and version != meta.version:
        raise NotFound(
            f"model '{meta.name}' has no version '{cut(version)}': this server serves {meta.version}"
        )
    return meta


async def predict(request: Request, codec: Codec, name: str | None, version: str | None) -> Response:
    """Every prediction endpoint: the model, the codec's rows, one runtime call, the codec's answer."""
    runtime = runtime_of(request)
    meta = served_model(runtime, name, version)
    options = Options(
        probabilities=request.query_params.get("probabilities"),
        header_length=request.headers.get(HEADER_LENGTH),
        default_probabilities=request.app.state.settings.return_probabilities,
    )
    decoded = codec.decode(await request.body(), options, runtime.require_schema(), meta)
    request.state.rows = len(decoded.rows)
    prediction = await runtime.predict(decoded.rows, proba=decoded.proba)
    out = codec.encode(meta, decoded, prediction)
    return Response(out.body, media_type=out.media_type, headers=out.headers)


# ---- operations -------------------------------------------------------------------------------


async def healthz() -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime = runtime_of(request)
    if runtime.ready and runtime.bundle is not None:
        meta = runtime.bundle.metadata
        return json_response({"status": "ready", "model": meta.name, "version": meta.version})
    return json_response({"status": runtime.state.value, "reason": runtime.reason}, 503)


async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


# ---- Open Inference Protocol (V2): server and model metadata, health ---------------------------


async def v2_server() -> Response:
    return json_response(oip.server_metadata())


async def v2_live() -> Response:
    return json_response({"live": True})


async def v2_ready(request: Request) -> Response:
    runtime = runtime_of(request)
    if runtime.ready:
        return json_response({"ready": True})
    return json_response({"ready": False, "reason": runtime.reason}, 503)


def _model_ready(request: Request, name: str, version: str | None) -> Response:
    runtime = runtime_of(request)
    meta = served_model(runtime, name, version)
    if not runtime.ready:
        return json_response({"name": meta.name, "ready": False, "reason": runtime.reason}, 503)
    return json_response({"name": meta.name, "ready": True})


async def v2_model(name: str, request: Request) -> Response:
    return json_response(oip.model_metadata(served_model(runtime_of(request), name)))


async def v2_model_version(name: str, version: str, request: Request) -> Response:
    return json_response(oip.model_metadata(served_model(runtime_of(request), name, version)))


async def v2_model_ready(name: str, request: Request) -> Response:
    return _model_ready(request, name, None)


async def v2_model_version_ready(name: str, version: str, request: Request) -> Response:
    return _model_ready(request, name, version)
