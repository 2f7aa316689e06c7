"""Training code of iris-classifier: what `model-server package --from-python` calls to build a release.

The model release workflow runs, for a tag models/iris-classifier/<version>:

    model-server package --from-python models/iris-classifier/train.py:build \
        --name iris-classifier --version <version> --out build/release/iris-classifier \
        --archive build/release/iris-classifier-<version>.tar.gz

Everything here is seeded, so the same commit builds the same bytes (the workflow checks it).
This model is the demo model (model_server.demo); replace the body with your own training.
"""

from __future__ import annotations

from typing import Any

from model_server.demo import IRIS_FEATURES, iris_classifier


def build() -> tuple[Any, Any, list[str]]:
    """(fitted estimator, a sample of the training features, the feature names in column order)."""
    model, X = iris_classifier()
    return model, X, IRIS_FEATURES
