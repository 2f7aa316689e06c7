"""Training code of sales-regressor: what `model-server package --from-python` calls to build a release.

The model release workflow runs, for a tag models/sales-regressor/<version>:

    model-server package --from-python models/sales-regressor/train.py:build \
        --name sales-regressor --version <version> --out build/release/sales-regressor \
        --archive build/release/sales-regressor-<version>.tar.gz

Everything here is seeded, so the same commit builds the same bytes (the workflow checks it).
This model is the demo model (model_server.demo); replace the body with your own training.
"""

from __future__ import annotations

from typing import Any

from model_server.demo import sales_regressor


def build() -> tuple[Any, Any]:
    """(fitted estimator, the training features as a DataFrame: its columns name the features)."""
    return sales_regressor()
