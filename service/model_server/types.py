"""The light value types every wing shares: what a model takes and what it answered.

``Metadata`` is a bundle's description (read and written as metadata.json by ``bundle.metadata``),
``Prediction`` a model call's result. The protocol codecs build responses from these two, the runtime
produces them: both import this module, neither imports the other. numpy only: no pandas, no
scikit-learn, no skops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Dtype = Literal["float", "int", "string"]
InputKind = Literal["array", "dataframe"]


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: Dtype
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Metadata:
    name: str
    version: str
    task: str  # "classifier" | "regressor"
    features: tuple[Feature, ...]
    input_kind: InputKind
    allow_nan: bool
    classes: tuple[Any, ...] | None
    has_predict_proba: bool
    estimator: str
    versions: dict[str, str]
    sha256: str
    untrusted_types: tuple[str, ...]
    reference: dict[str, Any]


@dataclass(frozen=True)
class Prediction:
    """Model output for a batch of rows: labels or values, and class probabilities when asked for."""

    predictions: np.ndarray
    probabilities: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.predictions)

    def split(self, start: int, stop: int, keep_proba: bool = True) -> Prediction:
        """Rows [start, stop) of a batched result (probabilities only for a request that asked)."""
        proba = self.probabilities[start:stop] if keep_proba and self.probabilities is not None else None
        return Prediction(self.predictions[start:stop], proba)
