"""Which protocol and route template a path belongs to: the bounded values of the request metrics'
`protocol` and `route` labels."""

from __future__ import annotations

import re
from typing import NamedTuple


class Endpoint(NamedTuple):
    protocol: str  # named | v2 | v1 | ops (metrics.PROTOCOLS)
    template: str  # never the raw path: model names and typos must not become label values
    prediction: bool  # subject to the in-flight limit, the deadline and the body checks


_V2 = [
    (
        re.compile(r"^/v2/models/[^/]+/versions/[^/]+/infer$"),
        "/v2/models/{name}/versions/{version}/infer",
        True,
    ),
    (re.compile(r"^/v2/models/[^/]+/infer$"), "/v2/models/{name}/infer", True),
    (
        re.compile(r"^/v2/models/[^/]+/versions/[^/]+/ready$"),
        "/v2/models/{name}/versions/{version}/ready",
        False,
    ),
    (re.compile(r"^/v2/models/[^/]+/ready$"), "/v2/models/{name}/ready", False),
    (re.compile(r"^/v2/models/[^/]+/versions/[^/]+$"), "/v2/models/{name}/versions/{version}", False),
    (re.compile(r"^/v2/models/[^/]+$"), "/v2/models/{name}", False),
]
_V1 = re.compile(r"^/v1/models/[^/]+:predict$")
_OPS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"})
_V2_FIXED = frozenset({"/v2", "/v2/health/live", "/v2/health/ready"})

PREDICT = Endpoint("named", "/predict", True)


def classify(path: str) -> Endpoint:
    if path == "/predict":
        return PREDICT
    if path.startswith("/v2"):
        if path in _V2_FIXED:
            return Endpoint("v2", path, False)
        for pattern, template, prediction in _V2:
            if pattern.match(path):
                return Endpoint("v2", template, prediction)
        return Endpoint("v2", "other", False)
    if path.startswith("/v1/"):
        return Endpoint(
            "v1", "/v1/models/{name}:predict" if _V1.match(path) else "other", bool(_V1.match(path))
        )
    return Endpoint("ops", path if path in _OPS else "other", False)
