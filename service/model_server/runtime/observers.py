"""What watches predictions after every successful model call (docs/design/contracts.md, "The drift
reference in a bundle").

``build_observers`` returns the list the runtime calls from its worker thread, never on the event
loop, with the rows the model saw and its predictions. Observers must be cheap and must not raise
for ordinary data (the runtime logs and swallows what they raise, so a monitoring bug never fails
a prediction).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from prometheus_client import Histogram

from ..bundle.load import LoadedBundle
from ..bundle.metadata import to_json
from ..features import Rows
from ..metrics import MAX_CLASS_LABELS, Metrics
from ..settings import Settings
from .drift import build_drift_monitor


class Observer(Protocol):
    def observe(self, rows: Rows, predictions: np.ndarray) -> None: ...


class BulkHistogram:
    """Observes an array of values into a histogram at once.

    prometheus_client has no bulk observe; a Python call per row would cost milliseconds for a 4096-row
    batch. This fills the buckets with one numpy pass through the histogram's private per-bucket values,
    and falls back to observe() per value if a prometheus_client release renames them."""

    def __init__(self, hist: Histogram) -> None:
        self._hist = hist
        self._bounds = np.asarray(getattr(hist, "_upper_bounds", []), dtype=np.float64)
        self._bulk = bool(hasattr(hist, "_buckets") and hasattr(hist, "_sum") and self._bounds.size)

    def observe(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        if not self._bulk:
            for v in values.tolist():
                self._hist.observe(v)
            return
        # side="left": a value equal to an edge belongs to that edge's bucket (le is inclusive).
        idx = np.searchsorted(self._bounds, values, side="left")
        buckets: Any = self._hist._buckets
        for i, n in enumerate(np.bincount(idx, minlength=self._bounds.size).tolist()):
            if n and i < len(buckets):
                buckets[i].inc(n)
        self._hist._sum.inc(float(values.sum()))


class OutputMetrics:
    """Predicted class counts for classifiers, a predicted value histogram for regressors."""

    def __init__(self, bundle: LoadedBundle, metrics: Metrics) -> None:
        meta = bundle.metadata
        self._is_classifier = meta.task == "classifier"
        if self._is_classifier:
            known = [str(c) for c in (meta.classes or ())]
            # Bounded cardinality: beyond MAX_CLASS_LABELS classes the rest count as "other".
            self._labels = set(known[:MAX_CLASS_LABELS])
            self._children = {lbl: metrics.predicted_class.labels(class_label=lbl) for lbl in self._labels}
            self._other = metrics.predicted_class.labels(class_label="other")
        else:
            edges = meta.reference.get("prediction", {}).get("edges") or [0.0]
            self._values = BulkHistogram(metrics.enable_predicted_value(tuple(float(e) for e in edges)))

    def observe(self, rows: Rows, predictions: np.ndarray) -> None:
        if self._is_classifier:
            values, counts = np.unique(np.asarray(predictions).astype(str), return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                child = self._children.get(value, self._other)
                child.inc(count)
            return
        self._values.observe(predictions)


def build_observers(bundle: LoadedBundle, settings: Settings, metrics: Metrics) -> list[Observer]:
    observers: list[Observer] = [OutputMetrics(bundle, metrics)]
    drift = build_drift_monitor(to_json(bundle.metadata), metrics, settings.drift_window_rows)
    observers += [drift] if drift is not None else []
    return observers
