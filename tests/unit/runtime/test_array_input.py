"""A DataFrame-fitted model is called with plain arrays only where that cannot change an answer."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from model_server.bundle.load import load_bundle
from model_server.bundle.package import package
from model_server.features import InputSchema
from model_server.runtime.array_input import array_input_equivalent, sample_rows
from model_server.settings import Settings
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from support.app import app_client

RNG = np.random.default_rng(7)
FRAME = pd.DataFrame(
    {"a": RNG.normal(size=300), "b": RNG.normal(size=300) * 10, "rooms": RNG.integers(1, 6, size=300)}
)
TARGET = FRAME["a"] * 3 - FRAME["b"] + FRAME["rooms"] * 0.5


def _schema_and_reference(
    frame: pd.DataFrame, tmp_path: Path, estimator: object = None
) -> tuple[object, dict]:
    """The input schema and reference statistics a bundle of ``frame`` gets (they depend on the data,
    not on the model: a plain linear model stands in for models skops cannot save, like lambdas)."""
    estimator = estimator or LinearRegression().fit(frame, TARGET)
    bundle = package(estimator, frame, name="m", version="1", out=tmp_path / "m")
    loaded = load_bundle(bundle, Settings())
    return InputSchema.for_model(loaded.metadata, 4096), loaded.metadata.reference


def test_a_positional_model_passes_and_its_array_answers_are_the_dataframe_answers(tmp_path: Path) -> None:
    model = make_pipeline(StandardScaler(), LinearRegression()).fit(FRAME, TARGET)
    schema, reference = _schema_and_reference(FRAME, tmp_path)
    assert array_input_equivalent(model, schema, reference, proba=False)
    rows = sample_rows(schema, reference)
    assert rows.shape[1] == 3 and len(rows) >= 18
    assert set(rows[:, 2]) <= {float(v) for v in range(0, 7)}, "int features are sampled as whole numbers"


def test_a_classifier_must_agree_on_probabilities_too(tmp_path: Path) -> None:
    y = (TARGET > TARGET.median()).map({True: "high", False: "low"})
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(FRAME, y)
    schema, reference = _schema_and_reference(FRAME, tmp_path)
    assert array_input_equivalent(model, schema, reference, proba=True)


def test_a_model_that_selects_columns_by_name_keeps_its_dataframe(tmp_path: Path) -> None:
    by_name = ColumnTransformer([("scale", StandardScaler(), ["b", "a"])], remainder="drop")
    model = make_pipeline(by_name, LinearRegression()).fit(FRAME, TARGET)
    schema, reference = _schema_and_reference(FRAME, tmp_path)
    assert not array_input_equivalent(model, schema, reference, proba=False)


def test_a_model_that_answers_an_array_differently_keeps_its_dataframe(tmp_path: Path) -> None:
    # Reads the frame by name (reordering it) but an array by position: both run, answers differ.
    reorder = FunctionTransformer(lambda X: X[["b", "a", "rooms"]] if hasattr(X, "columns") else X)
    model = make_pipeline(reorder, LinearRegression()).fit(FRAME, TARGET)
    schema, reference = _schema_and_reference(FRAME, tmp_path)
    assert not array_input_equivalent(model, schema, reference, proba=False)


def test_string_features_keep_the_dataframe(tmp_path: Path) -> None:
    frame = FRAME.assign(city=RNG.choice(["x", "y"], size=300))
    encode = ColumnTransformer([("city", OneHotEncoder(), ["city"])], remainder="passthrough")
    model = make_pipeline(encode, LinearRegression()).fit(frame, TARGET)
    schema, reference = _schema_and_reference(frame, tmp_path, model)
    assert not array_input_equivalent(model, schema, reference, proba=False)


@pytest.mark.parametrize("array_input", [True, False])
def test_the_server_answers_the_same_either_way_and_does_not_warn(tmp_path: Path, array_input: bool) -> None:
    model = make_pipeline(StandardScaler(), LinearRegression()).fit(FRAME, TARGET)
    bundle = package(model, FRAME, name="linear", version="1", out=tmp_path / "linear")
    rows = FRAME.iloc[:5]
    expected = model.predict(rows)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with app_client(bundle, array_input=array_input) as client:
            assert client.app.state.runtime.array_input is array_input
            r = client.post("/predict", json={"instances": rows.to_dict(orient="records")})
            assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.array(r.json()["predictions"]), expected, rtol=1e-9)
    names = [w for w in seen if "valid feature names" in str(w.message)]
    assert not names, "array calls to a names-fitted model must not warn on every request"
