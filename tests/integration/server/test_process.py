"""The real `model-server serve` process: startup, a prediction over TCP, a clean SIGTERM exit."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from support.serverproc import http_get, start_server

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post_json(url: str, body: object) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with NO_PROXY.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_serve_predicts_and_exits_zero_on_sigterm(iris_bundle: Path) -> None:
    with start_server(iris_bundle) as srv:
        status, body = post_json(
            srv.url("/predict"),
            {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
        )
        assert (status, body["predictions"]) == (200, ["virginica"])
        assert http_get(srv.url("/healthz"))[0] == 200
        assert srv.stop() == 0
    lines = [line for line in srv.log_lines() if line.get("msg") == "request"]
    assert any(line["path"] == "/predict" and line["status"] == 200 for line in lines), srv.log()
