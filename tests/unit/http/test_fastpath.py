"""The prediction fast path (http/fastpath.py) answers exactly as FastAPI's routes would.

Each request is sent twice, to the app with the short cut and to the same app with it switched off;
status, body and the error metric must be identical. A route that gains a dependency (say,
authentication) must never be short-cut.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from model_server.http import fastpath
from model_server.http.app import create_app
from model_server.http.fastpath import FastPredict
from model_server.http.routes import PREDICTION_ENDPOINTS
from model_server.metrics import Metrics
from model_server.settings import Settings

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
V2 = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}
CASES: list[tuple[str, Any]] = [
    ("/predict", ROW),
    ("/predict?probabilities=true", {"instances": [ROW, ROW]}),
    ("/predict?probabilities=maybe", ROW),
    ("/predict", {"sepal_length": "wide"}),
    ("/predict", b"{not json"),
    ("/v1/models/iris-classifier:predict", {"instances": [[5.1, 3.5, 1.4, 0.2]]}),
    ("/v1/models/other:predict", {"instances": [[5.1, 3.5, 1.4, 0.2]]}),
    ("/v2/models/iris-classifier/infer", V2),
    ("/v2/models/iris-classifier/infer", {**V2, "outputs": [{"name": "probabilities"}]}),
    ("/v2/models/iris-classifier/versions/1.0.0/infer", V2),
    ("/v2/models/iris-classifier/versions/9.9.9/infer", V2),
    ("/v2/models/nope/infer", V2),
    (
        "/v2/models/iris-classifier/infer",
        {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
    ),
]


@contextmanager
def client(bundle: Path, short_cut: bool) -> Iterator[tuple[TestClient, Metrics]]:
    metrics = Metrics()
    app = create_app(Settings(), metrics=metrics, bundle_path=bundle)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert app.state.runtime.wait_loaded(60)
        if not short_cut:
            # Switch the short cut off: FastPredict with no handlers passes everything to FastAPI.
            layer = app.middleware_stack
            while not isinstance(layer, FastPredict):
                layer = layer.app  # type: ignore[attr-defined]
            layer._handlers = {}
        yield c, metrics


def send(c: TestClient, path: str, body: Any) -> tuple[int, Any]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = c.post(path, content=content, headers={"Content-Type": "application/json"})
    return r.status_code, r.json()


def test_fast_path_answers_like_the_routes(iris_bundle: Path) -> None:
    with client(iris_bundle, True) as (fast, fast_m), client(iris_bundle, False) as (slow, slow_m):
        for path, body in CASES:
            assert send(fast, path, body) == send(slow, path, body), path
        for kind in ("invalid_input", "not_found"):
            sample = "model_server_prediction_errors_total"
            assert (
                fast_m.registry.get_sample_value(sample, {"kind": kind})
                == slow_m.registry.get_sample_value(sample, {"kind": kind})
                > 0
            )


def test_every_prediction_route_is_short_cut(iris_bundle: Path) -> None:
    app = create_app(Settings(), metrics=Metrics(), bundle_path=iris_bundle)
    assert set(fastpath._short_cuts(app)) == set(fastpath._CANDIDATES)


def test_a_route_with_a_dependency_is_not_short_cut() -> None:
    def require_token() -> None:
        raise AssertionError("not reached")

    app = FastAPI()
    app.post("/predict", dependencies=[Depends(require_token)])(PREDICTION_ENDPOINTS["/predict"])
    app.post("/v2/models/{name}/infer")(PREDICTION_ENDPOINTS["/v2/models/{name}/infer"])
    assert set(fastpath._short_cuts(app)) == {"/v2/models/{name}/infer"}

    guarded = APIRouter(dependencies=[Depends(require_token)])
    guarded.post("/v2/models/{name}/infer")(PREDICTION_ENDPOINTS["/v2/models/{name}/infer"])
    included = APIRouter()
    included.post("/v1/models/{name}:predict")(PREDICTION_ENDPOINTS["/v1/models/{name}:predict"])
    app = FastAPI()
    app.include_router(guarded)
    app.include_router(included, dependencies=[Depends(require_token)])
    assert fastpath._short_cuts(app) == {}

    app = FastAPI(dependencies=[Depends(require_token)])
    app.post("/predict")(PREDICTION_ENDPOINTS["/predict"])
    assert fastpath._short_cuts(app) == {}
