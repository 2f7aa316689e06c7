"""Input and prediction drift: Population Stability Index of a sliding window against the training data.

Why PSI. The bundle stores its training data as binned counts (deciles for numeric features, value
counts for categorical ones; see ``reference`` in metadata.json), not raw rows, so the measure must
work on two histograms. PSI = sum_i (a_i - e_i) * ln(a_i / e_i), with ``a`` the window's bin shares and
``e`` the reference's, is the symmetric Kullback-Leibler divergence of the two: one scale for numeric
and categorical features alike, computed in O(bins), and the measure model-risk teams already read,
with conventional thresholds (below). Tests that need raw samples (Kolmogorov-Smirnov, Wasserstein)
are impossible here, and chi-square p-values call every tiny shift "significant" once the window
holds enough rows, which is useless for alerting.

Thresholds (the alert rules import them from here): PSI < 0.1 no meaningful shift; 0.1-0.25 a moderate
shift worth a look (the dashboard turns yellow); > 0.25 a significant shift (red, and an alert).

Empty bins. A bin with no rows on one side makes ln(a/e) infinite. Every bin gets half a count on
both sides (``PSEUDOCOUNT``, the Jeffreys prior) before shares are taken: the score stays finite and
the correction fades as the window fills, unlike a fixed epsilon whose effect never shrinks.

Noise floor. Two samples of the same data still differ: the expected PSI is about
(bins - 1) * (1/window + 1/reference_rows). A column is therefore scored only once the window holds
``ROWS_PER_BIN`` rows per bin (200 rows for 10 decile bins; about 1000 for 50 categories), which keeps
that floor below about 0.05 plus the reference's own part, which a bundle fixes with enough rows. Until
then its gauge reads NaN ("not computed yet"), not 0, which would read as "no drift".

Bins. Numeric: bin 0 is (-inf, e1], bin i is (e_i, e_{i+1}], the last is (e_k, +inf), exactly the
reference's convention (``np.searchsorted(edges, x, side="left")``), plus a "missing" bin for NaN: a
rising share of missing values is drift too. The reference counts no missing values, which is right
when the model refuses NaN (the server then rejects such rows before the model) but unknown when it
accepts them: for such a model (``allow_nan``) the missing bin is left out of the score unless the
reference carries a ``missing`` count. Categorical: one bin per reference value, keyed like the
reference by ``str(value)`` (so None is "None"), and unseen values go to ``__other__``.

Cost on the request path: per model call, one ``searchsorted`` (or one hash factorize for strings) per
feature, one ``bincount`` for the rows that enter and one for the rows that leave the window, all
vectorised over the batch. The window stores one uint8 bin index per feature (not the raw row) in a
ring buffer, plus running counts per bin, so memory is ``window_rows * (features + 1)`` bytes and PSI is
recomputed from the counts (O(features * bins)) at most every ``refresh_seconds`` and on each scrape,
never per row. ``DRIFT_WINDOW_ROWS`` sets the window; :func:`build_drift_monitor` returns None for 0,
which turns drift tracking off (the benchmark compares both).

The window counts rows, not time: at low traffic it spans longer. Label values are the bundle's
feature names, capped at ``MAX_FEATURES`` columns (bounded cardinality even for very wide models).
Runtime layer: no web framework import.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..metrics import Metrics

log = logging.getLogger(__name__)

PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
PSEUDOCOUNT = 0.5
ROWS_PER_BIN = 20
MAX_FEATURES = 256
REFRESH_SECONDS = 5.0
OTHER = "__other__"

BinIndex = npt.NDArray[np.uint8]


class ReferenceStatsError(ValueError):
    """The bundle's reference statistics do not have the documented shape; the message says where."""


@dataclass(frozen=True)
class Binner:
    """Maps one column of values to bin indices, and holds the reference counts of those bins."""

    name: str
    kind: str  # "numeric" or "categorical"
    reference: npt.NDArray[np.float64]  # counts per bin (numeric: the missing bin last)
    scored_bins: int  # the first bins that count in the score (numeric: the missing bin or not)
    edges: npt.NDArray[np.float64] | None = None  # numeric only
    lookup: Mapping[str, int] | None = None  # categorical only: value -> bin

    @property
    def n_bins(self) -> int:
        return len(self.reference)

    def bins(self, values: Any) -> BinIndex:
        """Bin indices of ``values`` (1-D), vectorised."""
        if self.edges is not None:
            return self._numeric(values)
        return self._categorical(values)

    def _numeric(self, values: Any) -> BinIndex:
        assert self.edges is not None
        x = np.asarray(values, dtype=np.float64).reshape(-1)  # None becomes NaN
        idx = np.searchsorted(self.edges, x, side="left")
        idx[np.isnan(x)] = len(self.edges) + 1
        return idx.astype(np.uint8)

    def _categorical(self, values: Any) -> BinIndex:
        assert self.lookup is not None
        # str() of every value, as the packager keyed the reference (None -> "None", NaN -> "nan").
        text = np.asarray(values, dtype=object).reshape(-1).astype(str)
        # pandas' factorize hashes where numpy's unique sorts; but a model on arrays (a classifier's
        # labels are binned here too) runs without pandas (imports.py), and its batches are small.
        pd = sys.modules.get("pandas")
        if pd is not None:
            codes, uniques = pd.factorize(text)
        else:
            uniques, codes = np.unique(text, return_inverse=True)
        other = self.lookup[OTHER]
        # Few distinct values per batch: map those through the lookup, then gather.
        table = np.array([self.lookup.get(u, other) for u in uniques], dtype=np.uint8)
        binned: BinIndex = table[codes]
        return binned


def _check_counts(where: str, counts: Any) -> None:
    if not all(isinstance(c, int | float) and c >= 0 and math.isfinite(c) for c in counts):
        raise ReferenceStatsError(f"{where}: counts must be non-negative numbers")


def make_binner(name: str, stat: Mapping[str, Any], allow_nan: bool = False) -> Binner:
    """A :class:`Binner` from one reference STAT (contract: numeric edges/counts or categorical counts).

    ``allow_nan``: the model accepts missing values, so their reference share is unknown unless the
    STAT has a ``missing`` count; the missing bin is then not scored.
    """
    binner = _make_binner(name, stat, allow_nan)
    if binner.n_bins > 255:  # bin indices are stored as uint8 (the contract allows 11 or 51 bins)
        raise ReferenceStatsError(f"reference {name!r}: {binner.n_bins} bins, at most 255 supported")
    return binner


def _make_binner(name: str, stat: Mapping[str, Any], allow_nan: bool) -> Binner:
    kind = stat.get("kind")
    if kind == "numeric":
        edges = np.asarray(stat.get("edges", []), dtype=np.float64)
        counts = list(stat.get("counts", []))
        if edges.ndim != 1 or len(counts) != len(edges) + 1:
            raise ReferenceStatsError(
                f"reference {name!r}: need k edges and k+1 counts, "
                f"got {edges.size} edges and {len(counts)} counts"
            )
        if np.any(np.diff(edges) <= 0) or not np.all(np.isfinite(edges)):
            raise ReferenceStatsError(f"reference {name!r}: edges must be finite and strictly increasing")
        missing = stat.get("missing")
        _check_counts(f"reference {name!r}", [*counts, missing or 0])
        scored = len(counts) + (0 if missing is None and allow_nan else 1)
        return Binner(
            name, "numeric", np.asarray([*counts, missing or 0], dtype=np.float64), scored, edges=edges
        )
    if kind == "categorical":
        raw = stat.get("counts")
        if not isinstance(raw, Mapping) or not raw:
            raise ReferenceStatsError(f"reference {name!r}: categorical counts must be a non-empty object")
        _check_counts(f"reference {name!r}", raw.values())
        values = [str(v) for v in raw if v != OTHER]
        lookup = {v: i for i, v in enumerate(values)}
        lookup[OTHER] = len(values)
        counts = [float(raw[v]) for v in raw if v != OTHER] + [float(raw.get(OTHER, 0))]
        return Binner(name, "categorical", np.asarray(counts, dtype=np.float64), len(counts), lookup=lookup)
    raise ReferenceStatsError(f"reference {name!r}: kind must be 'numeric' or 'categorical', got {kind!r}")


def psi(actual: npt.ArrayLike, expected: npt.ArrayLike, pseudocount: float = PSEUDOCOUNT) -> float:
    """Population Stability Index of two histograms over the same bins (counts, not shares)."""
    a = np.asarray(actual, dtype=np.float64) + pseudocount
    e = np.asarray(expected, dtype=np.float64) + pseudocount
    a /= a.sum()
    e /= e.sum()
    return float(np.sum((a - e) * np.log(a / e)))


class _ScrapeHook:
    """A collector that yields nothing: it refreshes the drift gauges when Prometheus scrapes, so the
    last rows before traffic stops are reflected without a timer thread."""

    def __init__(self, refresh: Callable[[], None]) -> None:
        self._refresh = refresh

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        self._refresh()
        return []


class DriftMonitor:
    """A bounded window of binned inputs and predictions, and their PSI against the reference.

    An Observer (``observe(rows, predictions)``): called from worker threads after each model call.
    """

    def __init__(
        self,
        features: Sequence[Binner],
        prediction: Binner | None,
        metrics: Metrics,
        window_rows: int,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window_rows <= 0:
            raise ValueError("window_rows must be positive (build_drift_monitor turns 0 into 'off')")
        self.features = list(features)
        self.prediction = prediction
        self._binners = self.features + ([prediction] if prediction is not None else [])
        self._metrics = metrics
        self._window = window_rows
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        n_cols = len(self._binners)
        self._width = max(b.n_bins for b in self._binners)
        # Reference counts padded to one matrix, with a mask of the real bins, so PSI is one expression.
        self._mask = np.zeros((n_cols, self._width), dtype=bool)
        self._reference = np.zeros((n_cols, self._width), dtype=np.float64)
        for c, b in enumerate(self._binners):
            self._mask[c, : b.scored_bins] = True
            self._reference[c, : b.n_bins] = b.reference
        self._n_bins = self._mask.sum(axis=1)
        self._min_rows = np.minimum(ROWS_PER_BIN * self._n_bins, window_rows)
        self._ring = np.zeros((window_rows, n_cols), dtype=np.uint8)
        self._counts = np.zeros((n_cols, self._width), dtype=np.int64)
        self._offsets = (np.arange(n_cols) * self._width).astype(np.int64)
        self._pos = 0
        self._filled = 0
        self._dirty = False
        self._last_refresh = clock()
        self._lock = threading.Lock()
        self._failed_once = False
        # All features numeric: their edges padded with +inf into one matrix, so a batch of rows is
        # binned in one broadcast comparison instead of ~6 numpy calls per feature (a 20-feature
        # model: ~160 -> ~10 us per model call, which is on every prediction's path).
        self._edges: npt.NDArray[np.float64] | None = None
        self._missing_bin: npt.NDArray[np.uint8] | None = None
        if self.features and all(b.edges is not None for b in self.features):
            most = max(len(b.edges) for b in self.features if b.edges is not None)
            self._edges = np.full((len(self.features), most), np.inf)
            for c, b in enumerate(self.features):
                assert b.edges is not None
                self._edges[c, : len(b.edges)] = b.edges
            self._missing_bin = np.array([b.n_bins - 1 for b in self.features], dtype=np.uint8)
        self._hook = _ScrapeHook(self._refresh_if_dirty)
        metrics.registry.register(self._hook)
        # The registry collects in registration order: move the drift gauges behind the hook, so that
        # a scrape shows the scores as of that scrape rather than as of the one before.
        for gauge in (metrics.feature_drift, metrics.prediction_drift, metrics.drift_window_rows):
            metrics.registry.unregister(gauge)
            metrics.registry.register(gauge)
        metrics.drift_window_rows.set(0)
        # Every column is exported from the start, as NaN until the window can score it (see metrics.py).
        for b in self.features:
            metrics.feature_drift.labels(feature=b.name).set(math.nan)
        metrics.prediction_drift.set(math.nan)

    # -- request path -------------------------------------------------------------------------
    def observe(self, rows: Any, predictions: Any) -> None:
        """Add one model call's rows (2-D array in feature order, or a DataFrame) and predictions."""
        try:
            binned = self._bin(rows, predictions)
        except Exception:  # drift is advisory: never fail a prediction that already succeeded
            if not self._failed_once:
                self._failed_once = True
                log.warning("drift: could not bin a batch; drift scores skip such batches", exc_info=True)
            return
        self._add(binned)
        if self._clock() - self._last_refresh >= self._refresh_seconds:
            self.refresh()

    def _bin(self, rows: Any, predictions: Any) -> BinIndex:
        n = len(rows)
        out = np.empty((n, len(self._binners)), dtype=np.uint8)
        if self._edges is not None and isinstance(rows, np.ndarray) and rows.ndim == 2:
            x = rows.astype(np.float64, copy=False)
            # searchsorted(edges, x, side="left") is the number of edges below x; NaN compares False
            # everywhere and goes to the missing bin, as Binner._numeric does.
            below = (x[:, :, None] > self._edges[None, :, :]).sum(axis=2)
            out[:, : len(self.features)] = np.where(np.isnan(x), self._missing_bin, below)
        else:
            columns = [self._column(rows, i, b.name) for i, b in enumerate(self.features)]
            for c, (b, col) in enumerate(zip(self.features, columns, strict=True)):
                out[:, c] = b.bins(col)
        if self.prediction is not None:
            pred = np.asarray(predictions)
            if pred.ndim == 2 and pred.shape[1] == 1:
                pred = pred[:, 0]
            if pred.ndim != 1 or len(pred) != n:
                raise ValueError(f"expected one prediction per row, got shape {pred.shape} for {n} rows")
            out[:, -1] = self.prediction.bins(pred)
        return out

    @staticmethod
    def _column(rows: Any, index: int, name: str) -> Any:
        if hasattr(rows, "iloc"):  # a DataFrame: by name (the model's own column order may differ)
            return rows[name].to_numpy()
        return np.asarray(rows)[:, index]

    def _add(self, binned: BinIndex) -> None:
        if len(binned) > self._window:
            binned = binned[-self._window :]
        b = len(binned)
        if b == 0:
            return
        entering = np.bincount((binned + self._offsets).ravel(), minlength=self._counts.size)
        with self._lock:
            positions = (self._pos + np.arange(b)) % self._window
            # Writing fills the free slots first (they follow _pos) and then overwrites the oldest rows,
            # so the evicted rows are the last ones of ``positions``.
            evicted = min(b, max(0, self._filled + b - self._window))
            delta = entering
            if evicted:
                old = self._ring[positions[b - evicted :]]
                delta = entering - np.bincount((old + self._offsets).ravel(), minlength=self._counts.size)
            self._counts += delta.reshape(self._counts.shape)
            self._ring[positions] = binned
            self._pos = int((self._pos + b) % self._window)
            self._filled = min(self._window, self._filled + b)
            self._dirty = True

    # -- scrape path --------------------------------------------------------------------------
    def _refresh_if_dirty(self) -> None:
        if self._dirty:
            self.refresh()

    def refresh(self) -> None:
        """Recompute PSI from the running counts and set the gauges (cheap: O(features * bins))."""
        scores, rows = self.scores()
        self._metrics.drift_window_rows.set(rows)
        for b in self.features:
            if b.name in scores:
                self._metrics.feature_drift.labels(feature=b.name).set(scores[b.name])
        if self.prediction is not None and self.prediction.name in scores:
            self._metrics.prediction_drift.set(scores[self.prediction.name])

    def scores(self) -> tuple[dict[str, float], int]:
        """PSI per column that has enough rows (features by name, the prediction under its name)."""
        with self._lock:
            counts = self._counts.astype(np.float64)
            rows = self._filled
            self._dirty = False
            self._last_refresh = self._clock()
        a = np.where(self._mask, counts + PSEUDOCOUNT, 0.0)
        e = np.where(self._mask, self._reference + PSEUDOCOUNT, 0.0)
        a /= a.sum(axis=1, keepdims=True)
        e /= e.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(self._mask, (a - e) * np.log(a / e), 0.0)
        values = terms.sum(axis=1)
        return (
            {
                b.name: float(v)
                for b, v, m in zip(self._binners, values, self._min_rows, strict=True)
                if rows >= m
            },
            rows,
        )

    @property
    def window_rows(self) -> int:
        return self._filled

    def close(self) -> None:
        """Stop refreshing on scrape (the model is being unloaded)."""
        self._metrics.registry.unregister(self._hook)


PREDICTION_COLUMN = "__prediction__"


def build_drift_monitor(
    metadata: Mapping[str, Any],
    metrics: Metrics,
    window_rows: int,
) -> DriftMonitor | None:
    """The drift observer for a bundle (its parsed metadata.json), or None when drift is off.

    Off when ``window_rows`` is 0, or the bundle carries no usable reference statistics (logged): the
    feature gauges then stay absent and the prediction gauge NaN, rather than report a made-up zero.
    Drift is advisory, so a bad reference never keeps the model from serving.
    """
    try:
        return _build(metadata, metrics, window_rows)
    except ReferenceStatsError as e:
        log.warning("drift tracking off: %s", e)
        return None


def _build(metadata: Mapping[str, Any], metrics: Metrics, window_rows: int) -> DriftMonitor | None:
    reference = metadata.get("reference")
    if window_rows <= 0 or not reference:
        return None
    feature_stats = reference.get("features", {})
    names = [f["name"] if isinstance(f, Mapping) else str(f) for f in metadata.get("features", [])]
    if len(names) > MAX_FEATURES:
        log.warning(
            "drift: tracking the first %d of %d features (MAX_FEATURES bounds the series)",
            MAX_FEATURES,
            len(names),
        )
    allow_nan = bool(metadata.get("allow_nan", False))
    binners = []
    for name in names[:MAX_FEATURES]:
        if name not in feature_stats:
            raise ReferenceStatsError(f"reference has no statistics for feature {name!r}")
        binners.append(make_binner(name, feature_stats[name], allow_nan))
    prediction = reference.get("prediction")
    pred_binner = make_binner(PREDICTION_COLUMN, prediction) if prediction else None
    return DriftMonitor(binners, pred_binner, metrics, window_rows)
