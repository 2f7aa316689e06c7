"""Drift scores as Prometheus reads them from a real server process (the scoring itself:
tests/unit/runtime/test_drift.py)."""

from __future__ import annotations

import math

import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from support.serverproc import http_get, post_json, start_server

RNG = np.random.default_rng(7)
IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def test_the_real_server_exports_nan_until_the_window_can_score(iris_bundle):
    """What Prometheus reads from a real server: NaN for every score before enough rows, numbers after."""

    def scores(srv) -> dict[str, float]:
        status, body = http_get(srv.url("/metrics"))
        assert status == 200
        return {
            sample.labels.get("feature", "(predictions)"): sample.value
            for family in text_string_to_metric_families(body.decode())
            if family.name in ("model_server_feature_drift_psi", "model_server_prediction_drift_psi")
            for sample in family.samples
        }

    def predict(srv, n: int) -> None:
        rows = [
            dict(zip(IRIS_FEATURES, r, strict=True)) for r in RNG.normal([5.8, 3.0, 3.8, 1.2], 0.3, (n, 4))
        ]
        status, body = post_json(srv.url("/predict"), {"instances": rows})
        assert status == 200, body

    with start_server(iris_bundle) as srv:
        before = scores(srv)
        assert set(before) == {*IRIS_FEATURES, "(predictions)"}
        assert all(math.isnan(v) for v in before.values()), before
        predict(srv, 50)  # fewer than the 80 (predictions) and 220 (features) rows a score needs
        assert all(math.isnan(v) for v in scores(srv).values())
        predict(srv, 250)
        after = scores(srv)
        assert set(after) == set(before)
        assert all(math.isfinite(v) and v >= 0 for v in after.values()), after
