"""Thin routes: check the model name, read the body, decode with a codec, await the runtime, encode.

Every prediction goes through ``runtime.predict``; nothing here touches the estimator.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from ..errors import InvalidInput, NotFound, NotReady
from ..protocols import named as protocol_named
from ..protocols import v1 as protocol_v1
from ..protocols import v2 as protocol_v2
from ..runtime.lifecycle import ModelRuntime, State
from ..settings import _FALSE, _TRUE
from ..types import Metadata
from .responses import json_response, raw_json

router = APIRouter()


def _runtime(request: Request) -> ModelRuntime:
    runtime: ModelRuntime = request.app.state.runtime
    return runtime


def _model(runtime: ModelRuntime, name: str | None = None, version: str | None = None) -> Metadata:
    """The served model's metadata: 503 while not loaded, 404 for another name or version."""
    bundle = runtime.bundle
    if bundle is None or runtime.state not in (State.READY, State.DRAINING):
        raise NotReady(f"the model is not ready: {runtime.reason}")
    meta = bundle.metadata
    if name is not None and name != meta.name:
        raise NotFound(f"model '{name}' is not served here: this server serves '{meta.name}'")
    if version is not None and version != meta.version:
        raise NotFound(f"model '{meta.name}' has no version '{version}': this server serves {meta.version}")
    return meta


def _probabilities(request: Request, meta: Metadata) -> bool:
    raw = request.query_params.get("probabilities")
    if raw is None:
        return bool(request.app.state.settings.return_probabilities and meta.has_predict_proba)
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput(f"query parameter probabilities={raw!r} must be true or false")


# ---- operations -------------------------------------------------------------------------------


@router.get("/healthz", tags=["operations"], summary="Liveness: the process is up (never touches the model)")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", tags=["operations"], summary="Readiness: 200 once the model is loaded and warmed up")
async def readyz(request: Request) -> Response:
    runtime = _runtime(request)
    if runtime.ready and runtime.bundle is not None:
        meta = runtime.bundle.metadata
        return json_response({"status": "ready", "model": meta.name, "version": meta.version})
    return json_response({"status": runtime.state.value, "reason": runtime.reason}, 503)


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


# ---- named features ---------------------------------------------------------------------------


@router.post("/predict", tags=["predict"], summary="Predict from named features")
async def predict(request: Request) -> Response:
    runtime = _runtime(request)
    meta = _model(runtime)
    want = _probabilities(request, meta)
    rows = protocol_named.decode(await request.body(), runtime.require_schema())
    request.state.rows = len(rows)
    prediction = await runtime.predict(rows, proba=want)
    return raw_json(protocol_named.encode(meta, prediction))


# ---- KServe V1 --------------------------------------------------------------------------------


@router.post("/v1/models/{name}:predict", tags=["kserve v1"], summary="KServe V1 predict")
async def v1_predict(name: str, request: Request) -> Response:
    runtime = _runtime(request)
    meta = _model(runtime, name)
    want = _probabilities(request, meta)
    rows = protocol_v1.decode(await request.body(), runtime.require_schema())
    request.state.rows = len(rows)
    prediction = await runtime.predict(rows, proba=want)
    return raw_json(protocol_v1.encode(meta, prediction))


# ---- Open Inference Protocol (V2) -------------------------------------------------------------


@router.get("/v2", tags=["open inference protocol"], summary="Server metadata")
async def v2_server() -> Response:
    return json_response(protocol_v2.server_metadata())


@router.get("/v2/health/live", tags=["open inference protocol"], summary="Server live")
async def v2_live() -> Response:
    return json_response({"live": True})


@router.get("/v2/health/ready", tags=["open inference protocol"], summary="Server ready")
async def v2_ready(request: Request) -> Response:
    runtime = _runtime(request)
    if runtime.ready:
        return json_response({"ready": True})
    return json_response({"ready": False, "reason": runtime.reason}, 503)


async def _v2_model_ready(request: Request, name: str, version: str | None) -> Response:
    runtime = _runtime(request)
    meta = _model(runtime, name, version)
    if not runtime.ready:
        return json_response({"name": meta.name, "ready": False, "reason": runtime.reason}, 503)
    return json_response({"name": meta.name, "ready": True})


async def _v2_infer(request: Request, name: str, version: str | None) -> Response:
    runtime = _runtime(request)
    meta = _model(runtime, name, version)
    header = request.headers.get("inference-header-content-length")
    if header is not None and not header.strip().isdigit():
        raise InvalidInput(f"Inference-Header-Content-Length must be a byte count, got {header!r}")
    req = protocol_v2.decode(await request.body(), int(header) if header else None, runtime.require_schema())
    request.state.rows = len(req.rows)
    want = protocol_v2.wants_probabilities(req, meta, request.app.state.settings.return_probabilities)
    prediction = await runtime.predict(req.rows, proba=want)
    body, header_length = protocol_v2.encode(meta, req, prediction)
    if header_length is None:
        return raw_json(body)
    return Response(
        body,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_length)},
    )


def _meta_response(runtime: ModelRuntime, name: str, version: str | None) -> Response:
    return json_response(protocol_v2.model_metadata(_model(runtime, name, version)))


@router.get("/v2/models/{name}", tags=["open inference protocol"], summary="Model metadata")
async def v2_model(name: str, request: Request) -> Response:
    return _meta_response(_runtime(request), name, None)


@router.get(
    "/v2/models/{name}/versions/{version}", tags=["open inference protocol"], summary="Model metadata"
)
async def v2_model_version(name: str, version: str, request: Request) -> Response:
    return _meta_response(_runtime(request), name, version)


@router.get("/v2/models/{name}/ready", tags=["open inference protocol"], summary="Model ready")
async def v2_model_ready(name: str, request: Request) -> Response:
    return await _v2_model_ready(request, name, None)


@router.get(
    "/v2/models/{name}/versions/{version}/ready", tags=["open inference protocol"], summary="Model ready"
)
async def v2_model_version_ready(name: str, version: str, request: Request) -> Response:
    return await _v2_model_ready(request, name, version)


@router.post("/v2/models/{name}/infer", tags=["open inference protocol"], summary="Inference")
async def v2_infer(name: str, request: Request) -> Response:
    return await _v2_infer(request, name, None)


@router.post(
    "/v2/models/{name}/versions/{version}/infer", tags=["open inference protocol"], summary="Inference"
)
async def v2_infer_version(name: str, version: str, request: Request) -> Any:
    return await _v2_infer(request, name, version)
