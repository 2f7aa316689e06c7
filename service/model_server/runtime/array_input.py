"""Whether a DataFrame-fitted model may be called with a plain array, decided once at load.

scikit-learn remembers the column names a model was fitted with and checks them on every call: for a
linear model on ten numeric columns, building the DataFrame and validating it costs ~0.43 ms a call
against ~0.06 ms for the same values as a float64 array (make bench, in-process floor). Most models
use the names only for that check and read columns by position, so an array gives the same answers.
Some do not: a ColumnTransformer that selects columns by name refuses an array, and a custom step may
read ``X["col"]``.

So the runtime tries it on rows built from the bundle's reference statistics (every decile of every
feature, in several combinations): only if the array answers as the DataFrame does, the same labels
and the same values and probabilities to 1e-9 relative, does it pass arrays from then on. A model
that raises, or differs anywhere, keeps its DataFrame. Values are not compared bit for bit because
the two inputs can reach BLAS in different memory orders, which changes the last bit of a sum
(4e-16 on a scaler + linear pipeline), just as running on another CPU does. Only all-numeric inputs
qualify: strings need the DataFrame's object columns anyway.

Limit: the check compares these sample rows, not every possible input. A model that reads columns by
name but happens to agree on these rows would need two columns whose values are swapped or merged
consistently across all deciles, which positional scikit-learn code does not do; ``ARRAY_INPUT=off``
keeps the DataFrame for whoever wants no doubt.

scikit-learn warns on every array call to a model fitted with names ("X does not have valid feature
names"); that warning is silenced for the process once a model passes, because here it is intended.
Runtime layer: no web framework.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..features import InputSchema

_NAMES_WARNING = "X does not have valid feature names"


def sample_rows(schema: InputSchema, reference: dict[str, Any]) -> np.ndarray:
    """Rows from the reference deciles: row k takes decile (k + j) of feature j, so each feature runs
    through all of its deciles against different values of the others."""
    stats = reference.get("features", {})
    columns: list[Sequence[float]] = []
    for f in schema.features:
        edges = stats.get(f.name, {}).get("edges") or [0.0, 1.0]
        values = [float(v) for v in edges]
        columns.append([float(round(v)) for v in values] if f.dtype == "int" else values)
    n = max(len(c) for c in columns) * 2
    return np.array(
        [[col[(k + j) % len(col)] for j, col in enumerate(columns)] for k in range(n)], dtype=np.float64
    )


def array_input_equivalent(
    estimator: Any, schema: InputSchema, reference: dict[str, Any], proba: bool
) -> bool:
    """True if ``estimator`` answers a float64 array exactly as it answers the DataFrame of it."""
    if schema.input_kind != "dataframe" or not schema.numeric_only:
        return False
    rows = sample_rows(schema, reference)
    frame = schema.model_input(rows)
    methods = ["predict", "predict_proba"] if proba else ["predict"]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NAMES_WARNING, category=UserWarning)
            for method in methods:
                by_name = np.asarray(getattr(estimator, method)(frame))
                by_position = np.asarray(getattr(estimator, method)(rows))
                if not _same(by_name, by_position):
                    return False
    except Exception:  # noqa: BLE001 - whatever the array path raises, the DataFrame stays
        return False
    return True


def _same(by_name: np.ndarray, by_position: np.ndarray) -> bool:
    if by_name.shape != by_position.shape or by_name.dtype != by_position.dtype:
        return False
    if by_name.dtype.kind != "f":
        return bool(np.array_equal(by_name, by_position))
    scale = max(1.0, float(np.max(np.abs(by_name), initial=0.0)))
    return bool(np.allclose(by_name, by_position, rtol=1e-9, atol=1e-9 * scale, equal_nan=True))


def silence_names_warning() -> None:
    """Process-wide: every array call to a names-fitted model would warn (and pay for the warning)."""
    warnings.filterwarnings("ignore", message=_NAMES_WARNING, category=UserWarning)
