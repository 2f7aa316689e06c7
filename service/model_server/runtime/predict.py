"""The model call itself, in a worker thread: the estimator's predict (and predict_proba), its metrics
(the confidence histogram too, from the probabilities the call computed), then the observers.

``ModelRuntime`` builds one ``ModelCall`` per loaded model and sends every batch of rows through it
(the micro-batcher with the gathered rows, or one request's rows when batching is off).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInput, ModelFailed
from ..features import InputSchema, Rows
from ..metrics import Metrics
from ..types import Prediction
from .observers import BulkHistogram, Observer

log = logging.getLogger("model_server.runtime")


class ModelCall:
    """A loaded estimator with its input schema. ``array_input``: numeric rows reach the model as the
    float64 array they travel as, even when it was fitted on a DataFrame (array_input.py)."""

    def __init__(
        self,
        estimator: Any,
        schema: InputSchema,
        metrics: Metrics,
        *,
        array_input: bool = False,
        observers: Sequence[Observer] = (),
    ) -> None:
        self.estimator = estimator
        self.schema = schema
        self.metrics = metrics
        self.array_input = array_input
        self.observers = tuple(observers)
        self._confidence = BulkHistogram(metrics.prediction_confidence)

    def __call__(self, rows: Rows, proba: bool, *, record: bool = True) -> Prediction:
        # record=False for the warm-up: a cold first call is not traffic and must not skew the metrics.
        est = self.estimator
        m = self.metrics
        try:
            t0 = time.perf_counter()
            if self.array_input and isinstance(rows, np.ndarray):
                X = rows
            else:
                X = self.schema.model_input(rows)
            preds = np.asarray(est.predict(X))
            t1 = time.perf_counter()
            probabilities = None
            if proba:
                probabilities = np.asarray(est.predict_proba(X), dtype=np.float64)
            t2 = time.perf_counter()
        except (ValueError, TypeError) as e:
            # Input passed the schema but the model's own checks refused it (e.g. an unknown
            # category for a OneHotEncoder with handle_unknown="error"): the client can fix that.
            raise InvalidInput(f"the model rejected the input: {e}") from None
        except Exception as e:
            log.exception("model call failed")
            raise ModelFailed(
                f"the model failed on this input ({type(e).__name__}); see the server log"
            ) from e
        if record:
            m.inference_duration.labels(method="predict").observe(t1 - t0)
            if proba:
                m.inference_duration.labels(method="predict_proba").observe(t2 - t1)
            m.batch_rows.observe(len(rows))
            if probabilities is not None:  # only when a request asked: never a predict_proba of our own
                try:
                    self._confidence.observe(probabilities.max(axis=1))
                except Exception:  # monitoring must never fail a prediction
                    log.exception("recording the prediction confidence failed")
            for observer in self.observers:
                try:
                    observer.observe(rows, preds)
                except Exception:  # monitoring must never fail a prediction
                    log.exception("observer %s failed", type(observer).__name__)
        return Prediction(preds, probabilities)
