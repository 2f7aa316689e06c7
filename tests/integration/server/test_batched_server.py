"""The real server with BATCHING=on: concurrent requests from every protocol get exactly their own answer.

Concurrency decides how rows are grouped, so these tests never assert how many model calls there were,
only what must hold whatever the grouping: every answer equals the model's own prediction for that
request's rows, probabilities appear only where asked, and every row reached the model exactly once.
"""

from __future__ import annotations

import json
import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from model_server.bundle.load import load_bundle
from model_server.settings import Settings
from support.serverproc import http_get, start_server

pytestmark = pytest.mark.slow
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(url: str, body: Any) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with _OPENER.open(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    assert match, f"{name} not exported"
    return float(match.group(1))


def test_concurrent_v2_requests_are_answered_with_their_own_rows(iris_bundle: Path) -> None:
    model = load_bundle(iris_bundle, Settings()).estimator
    rng = np.random.default_rng(3)
    lows, highs = np.array([4.3, 2.0, 1.0, 0.1]), np.array([7.9, 4.4, 6.9, 2.5])
    requests = [rng.uniform(lows, highs, size=(int(rng.integers(1, 4)), 4)).round(2) for _ in range(96)]
    with start_server(
        iris_bundle, env={"BATCHING": "on", "BATCH_MAX_WAIT_MS": "5", "MAX_IN_FLIGHT": "128"}
    ) as srv:
        url = srv.url("/v2/models/iris-classifier/infer")

        def infer(i: int) -> tuple[int, Any]:
            x = requests[i]
            body: dict[str, Any] = {
                "inputs": [
                    {"name": "x", "shape": list(x.shape), "datatype": "FP64", "data": x.ravel().tolist()}
                ]
            }
            if i % 2:
                body["parameters"] = {"return_probabilities": True}
            return post(url, body)

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(infer, range(len(requests))))
        _, text = http_get(srv.url("/metrics"))

    for i, (status, body) in enumerate(answers):
        assert status == 200, body
        out = {o["name"]: o for o in body["outputs"]}
        x = requests[i]
        assert out["predictions"]["data"] == model.predict(x).tolist()
        if i % 2:
            np.testing.assert_allclose(
                np.reshape(out["probabilities"]["data"], (-1, 3)), model.predict_proba(x), atol=1e-12
            )
        else:
            assert "probabilities" not in out, "a request that did not ask got probabilities"
    total_rows = sum(len(x) for x in requests)
    metrics = text.decode()
    assert metric(metrics, "model_server_batch_rows_sum") == total_rows, "every row reached the model once"
    assert metric(metrics, "model_server_request_rows_count") == len(requests)
    assert metric(metrics, "model_server_batch_queue_wait_seconds_count") == len(requests)
    assert metric(metrics, "model_server_batch_queue_rows") == 0


def test_concurrent_named_and_v1_requests_on_a_dataframe_model(sales_bundle: Path) -> None:
    """String features travel as DataFrames: batching concatenates them and keeps the columns."""
    model = load_bundle(sales_bundle, Settings()).estimator
    regions = ["east", "north", "south", "west"]
    records = [
        {"region": regions[i % 4], "price": 10.0 + i, "advertising": 100.0 * (i % 7), "store_size": 1 + i % 3}
        for i in range(60)
    ]
    with start_server(sales_bundle, env={"BATCHING": "on", "BATCH_MAX_WAIT_MS": "5"}) as srv:

        def call(i: int) -> tuple[int, Any]:
            rec = records[i]
            if i % 2:
                return post(srv.url("/predict"), rec)
            names = ["region", "price", "advertising", "store_size"]
            v1 = {"instances": [[rec[n] for n in names]]}
            return post(srv.url("/v1/models/sales-regressor:predict"), v1)

        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(call, range(len(records))))

    expected = model.predict(pd.DataFrame(records)).tolist()
    for i, (status, body) in enumerate(answers):
        assert status == 200, body
        got = body["predictions"][0]
        assert got == pytest.approx(expected[i], rel=1e-12)
