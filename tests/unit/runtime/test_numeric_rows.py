"""Numeric rows travel as one float64 array and become a DataFrame only at the model call.

A model fitted on a DataFrame gets a DataFrame with its column names and its integer columns as
int64, exactly as before; the codecs still refuse a fractional value for an integer feature.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from model_server.bundle.package import package
from model_server.http.app import create_app
from model_server.metrics import Metrics
from model_server.settings import Settings
from sklearn.linear_model import LinearRegression


@pytest.fixture(scope="module")
def frame_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LinearRegression]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"size": rng.uniform(10, 100, 200), "rooms": rng.integers(1, 6, 200)})
    model = LinearRegression().fit(X, 3 * X["size"] + 7 * X["rooms"])
    out = package(model, X, name="homes", version="1.0.0", out=tmp_path_factory.mktemp("b") / "homes")
    return out, model


def test_codecs_give_arrays_and_the_model_gets_its_dataframe(
    frame_bundle: tuple[Path, LinearRegression],
) -> None:
    bundle, model = frame_bundle
    app = create_app(Settings(), metrics=Metrics(), bundle_path=bundle)
    schema = None
    with TestClient(app) as c:
        assert app.state.runtime.wait_loaded(60)
        schema = app.state.runtime.schema
        rows = schema.from_records([{"size": 50.5, "rooms": 3}, {"size": 20.0, "rooms": 1}])
        assert isinstance(rows, np.ndarray) and rows.dtype == np.float64
        X = schema.model_input(rows)
        assert list(X.columns) == ["size", "rooms"]
        assert X["rooms"].dtype == np.int64 and X["size"].dtype == np.float64

        r = c.post("/predict", json={"instances": [{"size": 50.5, "rooms": 3}, {"size": 20.0, "rooms": 1}]})
        assert r.status_code == 200
        expected = model.predict(pd.DataFrame({"size": [50.5, 20.0], "rooms": [3, 1]}))
        np.testing.assert_allclose(r.json()["predictions"], expected)

        r = c.post("/predict", json={"size": 50.5, "rooms": 2.5})
        assert r.status_code == 400
        assert "rooms" in r.json()["error"] and "integer" in r.json()["error"]
        v2 = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [50.5, 2.5]}]}
        r = c.post("/v2/models/homes/infer", json=v2)
        assert r.status_code == 400 and "rooms" in r.json()["error"]
