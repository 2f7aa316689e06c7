"""A regressor whose predict takes a fixed time: makes in-flight, deadline and shutdown tests exact.

It lives outside scikit-learn, so loading it needs TRUSTED_TYPES=slowmodel.SlowRegressor (which
also tests the configurable trust list), and the server process needs this folder on PYTHONPATH.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

TRUST = "slowmodel.SlowRegressor"


class SlowRegressor(RegressorMixin, BaseEstimator):
    def __init__(self, delay: float = 1.0) -> None:
        self.delay = delay

    def fit(self, X, y):
        self.n_features_in_ = np.asarray(X).shape[1]
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        if getattr(self, "warm_", False):
            time.sleep(self.delay)
        self.warm_ = True  # the warm-up call at load is fast, every request after it is slow
        return np.full(len(X), self.mean_)
