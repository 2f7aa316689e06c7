"""The endpoint table (http/endpoints.py) is the one source of the routes, the request metrics' labels
and the fast path."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest
from model_server.grpc import service as grpc_service
from model_server.http import fastpath
from model_server.http.app import create_app
from model_server.http.endpoints import ROUTES, classify
from model_server.metrics import PROTOCOLS
from model_server.settings import Settings
from support.paths import MONITORING

V2_INFER = "/v2/models/{name}/versions/{version}/infer"
# path -> (protocol, route label, prediction)
LABELS = {
    "/predict": ("named", "/predict", True),
    "/v1/models/iris:predict": ("v1", "/v1/models/{name}:predict", True),
    "/v1/models/iris": ("v1", "other", False),
    "/v1": ("ops", "other", False),
    "/v2": ("v2", "/v2", False),
    "/v2/health/live": ("v2", "/v2/health/live", False),
    "/v2/health/ready": ("v2", "/v2/health/ready", False),
    "/v2/models/iris": ("v2", "/v2/models/{name}", False),
    "/v2/models/iris/ready": ("v2", "/v2/models/{name}/ready", False),
    "/v2/models/iris/versions/1.0.0": ("v2", "/v2/models/{name}/versions/{version}", False),
    "/v2/models/iris/versions/1.0.0/ready": ("v2", "/v2/models/{name}/versions/{version}/ready", False),
    "/v2/models/iris/infer": ("v2", "/v2/models/{name}/infer", True),
    "/v2/models/iris/versions/1.0.0/infer": ("v2", V2_INFER, True),
    "/v2/models/iris/versions/1.0.0/infer/more": ("v2", "other", False),
    "/v2x": ("v2", "other", False),
    "/healthz": ("ops", "/healthz", False),
    "/readyz": ("ops", "/readyz", False),
    "/metrics": ("ops", "/metrics", False),
    "/docs": ("ops", "/docs", False),
    "/docs/static/swagger-ui-bundle.js": ("ops", "/docs/static/{file}", False),
    "/docs/oauth2-redirect": ("ops", "other", False),
    "/openapi.json": ("ops", "/openapi.json", False),
    "/admin/../etc/passwd": ("ops", "other", False),
}


def test_paths_classify_to_bounded_labels() -> None:
    for path, (protocol, template, prediction) in LABELS.items():
        ep = classify(path)
        assert (ep.protocol, ep.template, ep.prediction) == (protocol, template, prediction), path
        assert ep.protocol in PROTOCOLS


def test_every_route_of_the_app_comes_from_the_table() -> None:
    paths = create_app(Settings()).openapi()["paths"]
    served = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert served == {(r.method, r.template) for r in ROUTES}


def test_each_prediction_endpoint_is_classified_as_its_own_template_and_short_cut() -> None:
    predictions = [r for r in ROUTES if r.codec is not None]
    assert [r.template for r in predictions] == [
        "/predict",
        "/v1/models/{name}:predict",
        "/v2/models/{name}/infer",
        V2_INFER,
    ]
    for route in predictions:
        example = route.template.replace("{name}", "m").replace("{version}", "1")
        assert classify(example) == route.endpoint
        assert route.endpoint.content_types, route.template
    assert set(fastpath._CANDIDATES) == {r.template for r in predictions}


def test_the_monitoring_selector_of_predictions_names_exactly_the_tables_prediction_routes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dashboards, alerts and the autoscaling metric select predictions by the `route` label with a
    regex of their own (monitoring/mixin/config.py); it must match the table's prediction templates and
    the gRPC prediction methods, and no other route label the server writes."""
    spec = importlib.util.spec_from_file_location("mixin_config", MONITORING / "mixin" / "config.py")
    assert spec is not None and spec.loader is not None
    config = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, config)  # its dataclasses look their module up there
    spec.loader.exec_module(config)
    matcher = re.fullmatch(r'route=~"(.+)"', config.PREDICTION)
    assert matcher is not None, config.PREDICTION
    selects = re.compile(matcher[1])
    labels = {r.template for r in ROUTES} | {"other", "/docs", "/openapi.json", "/docs/static/{file}"}
    labels |= {m.route for m in grpc_service.METHODS}
    assert {label for label in labels if selects.fullmatch(label)} == {
        r.template for r in ROUTES if r.codec is not None
    } | {m.route for m in grpc_service.METHODS if m.prediction}
