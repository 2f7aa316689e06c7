"""Every endpoint of the server, in one table: its method, path template, protocol and handler, or for a
prediction endpoint the codec that reads and writes it.

Derived from the table: the FastAPI routes (routes.py), the prediction fast path (fastpath.py) and
the classification of a request path into the bounded values of the request metrics' `protocol` and
`route` labels (``classify``: never the raw path, so model names and typos never become label values).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..protocols import named, v1, v2
from ..protocols.codec import Codec
from . import handlers

# The interactive docs (docs.py), their files, and the OpenAPI schema FastAPI writes.
DOCS_URL = "/docs"
DOCS_ASSETS_URL = "/docs/static"
OPENAPI_URL = "/openapi.json"


class Endpoint(NamedTuple):
    """What the request metrics and the middleware know of a request's path."""

    protocol: str  # named | v2 | v1 | ops (metrics.PROTOCOLS)
    template: str  # never the raw path: model names and typos must not become label values
    prediction: bool  # subject to the in-flight limit, the deadline and the body checks
    content_types: frozenset[str] = frozenset()  # what a prediction endpoint's codec reads


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # FastAPI's path template, and the `route` label
    protocol: str
    name: str  # FastAPI's route name (the OpenAPI operation id starts with it)
    summary: str
    tag: str
    handler: Callable[..., Awaitable[Any]] | None = None  # every endpoint but the predictions
    codec: Codec | None = None  # prediction endpoints: handlers.predict with this codec
    params: tuple[str, ...] = field(init=False)  # the template's {parameters}, in order
    pattern: re.Pattern[str] = field(init=False)  # a path of this template, parameters as named groups

    def __post_init__(self) -> None:
        assert (self.handler is None) != (self.codec is None), self.template
        params = tuple(re.findall(r"\{(\w+)\}", self.template))
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))

    @property
    def endpoint(self) -> Endpoint:
        if self.codec is None:
            return Endpoint(self.protocol, self.template, False)
        return Endpoint(self.protocol, self.template, True, self.codec.content_types)


def _get(
    template: str, protocol: str, handler: Callable[..., Awaitable[Any]], summary: str, tag: str
) -> Route:
    return Route("GET", template, protocol, handler.__name__, summary, tag, handler=handler)


def _post(template: str, codec: Codec, name: str, summary: str, tag: str) -> Route:
    return Route("POST", template, codec.protocol, name, summary, tag, codec=codec)


_OPS, _NAMED, _V1, _V2 = "operations", "predict", "kserve v1", "open inference protocol"
ROUTES: tuple[Route, ...] = (
    _get("/healthz", "ops", handlers.healthz, "Liveness: the process is up (never touches the model)", _OPS),
    _get("/readyz", "ops", handlers.readyz, "Readiness: 200 once the model is loaded and warmed up", _OPS),
    _get("/metrics", "ops", handlers.metrics, "Prometheus metrics", _OPS),
    _post("/predict", named.CODEC, "predict", "Predict from named features", _NAMED),
    _post("/v1/models/{name}:predict", v1.CODEC, "v1_predict", "KServe V1 predict", _V1),
    _get("/v2", "v2", handlers.v2_server, "Server metadata", _V2),
    _get("/v2/health/live", "v2", handlers.v2_live, "Server live", _V2),
    _get("/v2/health/ready", "v2", handlers.v2_ready, "Server ready", _V2),
    _get("/v2/models/{name}", "v2", handlers.v2_model, "Model metadata", _V2),
    _get("/v2/models/{name}/versions/{version}", "v2", handlers.v2_model_version, "Model metadata", _V2),
    _get("/v2/models/{name}/ready", "v2", handlers.v2_model_ready, "Model ready", _V2),
    _get(
        "/v2/models/{name}/versions/{version}/ready",
        "v2",
        handlers.v2_model_version_ready,
        "Model ready",
        _V2,
    ),
    _post("/v2/models/{name}/infer", v2.CODEC, "v2_infer", "Inference", _V2),
    _post("/v2/models/{name}/versions/{version}/infer", v2.CODEC, "v2_infer_version", "Inference", _V2),
)
PREDICTION_ROUTES = tuple(r for r in ROUTES if r.codec is not None)

# Paths without parameters are looked up; the others are matched in table order.
_FIXED: dict[str, Endpoint] = {r.template: r.endpoint for r in ROUTES if not r.params} | {
    path: Endpoint("ops", path, False) for path in (DOCS_URL, OPENAPI_URL)
}
_PATTERNS = [(r.pattern, r.endpoint) for r in ROUTES if r.params]
# The docs' files share one label; an unknown path still says which protocol it was meant for.
_PREFIXES = (
    (f"{DOCS_ASSETS_URL}/", Endpoint("ops", f"{DOCS_ASSETS_URL}/{{file}}", False)),
    ("/v2", Endpoint("v2", "other", False)),
    ("/v1/", Endpoint("v1", "other", False)),
)
_OTHER_OPS = Endpoint("ops", "other", False)


def classify(path: str) -> Endpoint:
    fixed = _FIXED.get(path)
    if fixed is not None:
        return fixed
    for pattern, endpoint in _PATTERNS:
        if pattern.match(path):
            return endpoint
    for prefix, endpoint in _PREFIXES:
        if path.startswith(prefix):
            return endpoint
    return _OTHER_OPS
