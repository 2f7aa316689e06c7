"""The demo bundles, built from data that ships with scikit-learn or is generated: no download.

Fixed seeds and the reproducible artifact writer make every build byte-identical, so `make demo`
on any machine (same library versions) gives the same sha256.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .bundle.package import package

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
REGIONS = ["north", "south", "east", "west"]


def iris_classifier() -> tuple[RandomForestClassifier, np.ndarray]:
    """Fitted on a plain array, so it is served on the fast path (no DataFrame per request)."""
    data = load_iris()
    X = np.asarray(data.data, dtype=np.float64)
    y = np.asarray(data.target_names)[data.target]  # string labels: setosa, versicolor, virginica
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    return model, X


def sales_data(rows: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Weekly store sales: a string feature (region), floats and an integer."""
    rng = np.random.default_rng(seed)
    region = rng.choice(REGIONS, size=rows, p=[0.4, 0.3, 0.2, 0.1])
    price = np.round(rng.uniform(5.0, 50.0, rows), 2)
    advertising = np.round(rng.gamma(2.0, 500.0, rows), 2)
    store_size = rng.integers(1, 6, rows)
    base = pd.Series(region).map({"north": 1200.0, "south": 900.0, "east": 1000.0, "west": 700.0}).to_numpy()
    sales = base - 18.0 * price + 0.35 * advertising + 150.0 * store_size + rng.normal(0, 60.0, rows)
    frame = pd.DataFrame(
        {
            "region": pd.array(region, dtype=object),
            "price": price,
            "advertising": advertising,
            "store_size": store_size,
        }
    )
    return frame, sales


def sales_regressor() -> tuple[Pipeline, pd.DataFrame]:
    X, y = sales_data()
    model = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("region", OneHotEncoder(handle_unknown="ignore"), ["region"]),
                        ("numeric", StandardScaler(), ["price", "advertising", "store_size"]),
                    ]
                ),
            ),
            ("regressor", GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0)),
        ]
    ).fit(X, y)
    return model, X


def build_demo(out: Path) -> list[Path]:
    iris, X_iris = iris_classifier()
    sales, X_sales = sales_regressor()
    return [
        package(
            iris,
            X_iris,
            name="iris-classifier",
            version="1.0.0",
            out=out / "iris-classifier",
            feature_names=IRIS_FEATURES,
        ),
        package(sales, X_sales, name="sales-regressor", version="1.0.0", out=out / "sales-regressor"),
    ]
