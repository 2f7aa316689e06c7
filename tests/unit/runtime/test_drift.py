"""Drift scores (model_server.runtime.drift): PSI values, the bounded window, odd inputs and the gauges."""

from __future__ import annotations

import math
import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_server.metrics import Metrics
from model_server.runtime.drift import (
    PREDICTION_COLUMN,
    PSI_MODERATE,
    PSI_SIGNIFICANT,
    DriftMonitor,
    ReferenceStatsError,
    build_drift_monitor,
    make_binner,
    psi,
)
from prometheus_client import generate_latest

RNG = np.random.default_rng(7)
IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def numeric_stat(sample: np.ndarray) -> dict:
    """A reference STAT exactly as the contract describes it: distinct deciles and k+1 counts."""
    edges = np.unique(np.quantile(sample, np.linspace(0.1, 0.9, 9)))
    counts = np.bincount(np.searchsorted(edges, sample, side="left"), minlength=len(edges) + 1)
    return {"kind": "numeric", "edges": edges.tolist(), "counts": counts.tolist()}


def categorical_stat(sample: list[str]) -> dict:
    values, counts = np.unique(np.asarray(sample), return_counts=True)
    return {"kind": "categorical", "counts": {str(v): int(c) for v, c in zip(values, counts)}}


def iris_like_metadata(n: int = 2000) -> tuple[dict, np.ndarray]:
    x = RNG.normal(loc=[5.8, 3.0, 3.8, 1.2], scale=[0.8, 0.4, 1.7, 0.7], size=(n, 4))
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    labels = RNG.choice(["setosa", "versicolor", "virginica"], size=n)
    meta = {
        "features": [{"name": f, "dtype": "float"} for f in names],
        "reference": {
            "features": {f: numeric_stat(x[:, i]) for i, f in enumerate(names)},
            "prediction": categorical_stat(labels.tolist()),
            "rows": n,
        },
    }
    return meta, x


def gauge(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def monitor(meta: dict, window: int = 5000, **kw) -> tuple[DriftMonitor, Metrics]:
    metrics = Metrics()
    m = build_drift_monitor(meta, metrics, window)
    assert m is not None
    if kw:
        m = DriftMonitor(m.features, m.prediction, metrics, window, **kw)
    return m, metrics


# -- PSI itself -------------------------------------------------------------------------------------
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=60))
def test_psi_of_a_histogram_with_itself_is_zero(counts):
    assert psi(counts, counts) == pytest.approx(0.0, abs=1e-12)


@given(
    st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=60),
    st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=60),
)
def test_psi_is_symmetric_non_negative_and_finite_even_with_empty_bins(a, e):
    n = min(len(a), len(e))
    a, e = a[:n], e[:n]
    value = psi(a, e)
    assert np.isfinite(value) and value >= -1e-12
    assert value == pytest.approx(psi(e, a), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("actual", "expected", "low", "high"),
    [
        # same shares at a different scale: no drift (the pseudocount costs almost nothing at this size)
        ([1000] * 10, [100] * 10, 0.0, 0.01),
        # a tenth of the mass moved from one bin to its neighbour: moderate at most
        ([100, 100, 100, 100, 100, 100, 100, 100, 80, 120], [100] * 10, 0.0, PSI_MODERATE),
        # all mass in the top bin of ten: far past the significant threshold
        ([0] * 9 + [1000], [100] * 10, PSI_SIGNIFICANT, 20.0),
        # a bin the reference never saw, holding half the window: significant, and finite
        ([500, 500, 0], [0, 1000, 0], PSI_SIGNIFICANT, 20.0),
    ],
)
def test_psi_table(actual, expected, low, high):
    assert low <= psi(actual, expected) <= high


# -- binning follows the reference's bin convention ------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected_bin"),
    [
        (-np.inf, 0),
        (0.5, 0),
        (1.0, 0),
        (1.0000001, 1),
        (2.0, 1),
        (2.5, 2),
        (3.0, 2),
        (3.1, 3),
        (np.inf, 3),
        (np.nan, 4),
    ],
)
def test_numeric_bins_are_left_open_right_closed_and_nan_is_missing(value, expected_bin):
    b = make_binner("x", {"kind": "numeric", "edges": [1.0, 2.0, 3.0], "counts": [1, 1, 1, 1]})
    assert b.bins(np.array([value])).tolist() == [expected_bin]


def test_categorical_values_are_keyed_like_the_reference_and_unseen_go_to_other():
    b = make_binner("c", {"kind": "categorical", "counts": {"red": 5, "blue": 3, "None": 1, "__other__": 2}})
    got = b.bins(np.array(["blue", "red", "mauve", None, np.nan, "red"], dtype=object)).tolist()
    # red=0, blue=1, "None"=2 (the packager counts str(value)), __other__=3 (NaN was never seen)
    assert got == [1, 0, 3, 2, 3, 0]


@pytest.mark.parametrize(
    ("stat", "message"),
    [
        ({"kind": "numeric", "edges": [1, 2], "counts": [1, 1]}, "need k edges and k\\+1 counts"),
        ({"kind": "numeric", "edges": [2, 1], "counts": [1, 1, 1]}, "strictly increasing"),
        ({"kind": "numeric", "edges": [1, 2], "counts": [1, -1, 1]}, "non-negative"),
        ({"kind": "categorical", "counts": {}}, "non-empty object"),
        ({"kind": "histogram"}, "kind must be"),
        ({"kind": "categorical", "counts": {str(i): 1 for i in range(300)}}, "at most 255"),
    ],
)
def test_malformed_reference_is_refused_with_a_reason(stat, message):
    with pytest.raises(ReferenceStatsError, match=message):
        make_binner("f", stat)


def test_a_bad_reference_turns_drift_off_with_a_reason_instead_of_failing_the_model(caplog):
    meta, _ = iris_like_metadata()
    del meta["reference"]["features"]["petal_width"]
    assert build_drift_monitor(meta, Metrics(), 100) is None
    assert "drift tracking off: reference has no statistics for feature 'petal_width'" in caplog.text


def test_window_zero_or_no_reference_turns_drift_off():
    meta, _ = iris_like_metadata()
    assert build_drift_monitor(meta, Metrics(), 0) is None
    assert build_drift_monitor({"features": meta["features"]}, Metrics(), 100) is None


# -- the monitor end to end (without a server) -------------------------------------------------------
def test_same_distribution_scores_low_and_shifted_scores_high():
    meta, _ = iris_like_metadata()
    m, metrics = monitor(meta)
    x = RNG.normal(loc=[5.8, 3.0, 3.8, 1.2], scale=[0.8, 0.4, 1.7, 0.7], size=(5000, 4))
    preds = RNG.choice(["setosa", "versicolor", "virginica"], size=5000)
    for chunk in range(0, 5000, 250):
        m.observe(x[chunk : chunk + 250], preds[chunk : chunk + 250])
    m.refresh()
    for f in ("sepal_length", "sepal_width", "petal_length", "petal_width"):
        assert gauge(metrics, "model_server_feature_drift_psi", feature=f) < PSI_MODERATE
    assert gauge(metrics, "model_server_prediction_drift_psi") < PSI_MODERATE
    assert gauge(metrics, "model_server_drift_window_rows") == 5000

    # one standard deviation shift in one feature, and predictions collapse to one class
    shifted = x.copy()
    shifted[:, 2] += 1.7
    for chunk in range(0, 5000, 250):
        m.observe(shifted[chunk : chunk + 250], np.array(["virginica"] * 250))
    m.refresh()
    assert gauge(metrics, "model_server_feature_drift_psi", feature="petal_length") > PSI_SIGNIFICANT
    assert gauge(metrics, "model_server_feature_drift_psi", feature="sepal_length") < PSI_MODERATE
    assert gauge(metrics, "model_server_prediction_drift_psi") > PSI_SIGNIFICANT


def test_vectorised_scores_equal_psi_of_the_window_counts():
    meta, _ = iris_like_metadata()
    m, _ = monitor(meta, window=700)
    x = RNG.normal(loc=[6, 3, 4, 1], size=(1000, 4))
    preds = RNG.choice(["setosa", "virginica"], size=1000)
    m.observe(x, preds)
    scores, rows = m.scores()
    assert rows == 700
    last = x[-700:]
    for i, b in enumerate(m.features):
        window_counts = np.bincount(b.bins(last[:, i]), minlength=b.n_bins)
        assert scores[b.name] == pytest.approx(psi(window_counts, b.reference), rel=1e-9)
    assert m.prediction is not None
    pred_counts = np.bincount(m.prediction.bins(preds[-700:]), minlength=m.prediction.n_bins)
    assert scores[PREDICTION_COLUMN] == pytest.approx(psi(pred_counts, m.prediction.reference), rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    window=st.integers(min_value=1, max_value=50),
    batches=st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=12),
)
def test_window_is_bounded_and_its_counts_are_exactly_the_last_rows(window, batches):
    stat = {"kind": "numeric", "edges": [0.0, 10.0, 20.0], "counts": [1, 1, 1, 1]}
    metrics = Metrics()
    m = DriftMonitor([make_binner("f", stat)], None, metrics, window, refresh_seconds=1e9)
    seen: list[float] = []
    for size in batches:
        values = RNG.uniform(-5, 25, size=size)
        m.observe(values.reshape(-1, 1), np.zeros(size))
        seen.extend(values.tolist())
    expected_rows = min(window, len(seen))
    assert m.window_rows == expected_rows
    last = np.asarray(seen[len(seen) - expected_rows :])
    want = np.bincount(np.searchsorted([0.0, 10.0, 20.0], last, side="left"), minlength=5)
    assert m._counts[0, :5].tolist() == want.tolist()
    assert m._ring.shape == (window, 1)  # memory is fixed by the window, whatever the traffic


def test_scores_wait_for_enough_rows_per_bin():
    meta, x = iris_like_metadata()
    m, metrics = monitor(meta, window=5000)
    m.observe(x[:50], np.array(["setosa"] * 50))
    m.refresh()
    # 11 bins (10 deciles + missing) need 220 rows: NaN ("not computed yet") rather than a noisy score,
    # and never 0, which would read as "no drift"
    assert math.isnan(gauge(metrics, "model_server_feature_drift_psi", feature="sepal_length"))
    assert math.isnan(gauge(metrics, "model_server_prediction_drift_psi"))  # 4 bins need 80 rows
    assert gauge(metrics, "model_server_drift_window_rows") == 50
    m.observe(x[:300], np.array(["setosa"] * 300))
    m.refresh()
    assert math.isfinite(gauge(metrics, "model_server_feature_drift_psi", feature="sepal_length"))
    assert math.isfinite(gauge(metrics, "model_server_prediction_drift_psi"))


def test_without_drift_tracking_no_score_reads_as_no_drift():
    """Drift off (DRIFT_WINDOW_ROWS=0 or no reference): no feature series, and the prediction gauge,
    which an unlabelled gauge always exports, is NaN rather than a made-up 0."""
    metrics = Metrics()
    assert build_drift_monitor(iris_like_metadata()[0], metrics, 0) is None
    text = generate_latest(metrics.registry).decode()
    assert "model_server_prediction_drift_psi NaN" in text
    assert "model_server_feature_drift_psi{" not in text


@pytest.mark.slow
def test_missing_values_raise_the_score_of_their_feature_only():
    meta, x = iris_like_metadata()
    rows = x[:2000].copy()
    rows[:600, 1] = np.nan  # 30% missing sepal_width, never seen in training
    preds = np.array(["setosa", "versicolor", "virginica"] * 666 + ["setosa", "setosa"])
    m, metrics = monitor(meta, window=2000)
    m.observe(rows, preds)
    m.refresh()
    assert gauge(metrics, "model_server_feature_drift_psi", feature="sepal_width") > PSI_SIGNIFICANT
    assert gauge(metrics, "model_server_feature_drift_psi", feature="sepal_length") < PSI_MODERATE

    # A model that accepts NaN: the training share of missing values is unknown, so it is not scored
    # (no false alarm); the present values are still compared.
    m, metrics = monitor({**meta, "allow_nan": True}, window=2000)
    m.observe(rows, preds)
    m.refresh()
    assert gauge(metrics, "model_server_feature_drift_psi", feature="sepal_width") < PSI_MODERATE

    # ...unless the reference says how many were missing
    meta["reference"]["features"]["sepal_width"]["missing"] = 0
    m, metrics = monitor({**meta, "allow_nan": True}, window=2000)
    m.observe(rows, preds)
    m.refresh()
    assert gauge(metrics, "model_server_feature_drift_psi", feature="sepal_width") > PSI_SIGNIFICANT


def test_dataframe_rows_with_a_categorical_feature_and_numeric_predictions():
    region = ["north"] * 600 + ["south"] * 300 + ["east"] * 100
    amount = RNG.gamma(2.0, 10.0, size=1000)
    meta = {
        "features": [{"name": "amount", "dtype": "float"}, {"name": "region", "dtype": "string"}],
        "reference": {
            "features": {"amount": numeric_stat(amount), "region": categorical_stat(region)},
            "prediction": numeric_stat(amount * 3),
            "rows": 1000,
        },
    }
    m, metrics = monitor(meta, window=1000)
    # columns in another order than the features: the monitor reads them by name
    same = pd.DataFrame({"region": region, "amount": amount})
    m.observe(same, amount * 3)
    m.refresh()
    assert gauge(metrics, "model_server_feature_drift_psi", feature="region") < 0.01
    assert gauge(metrics, "model_server_prediction_drift_psi") < 0.05

    unseen = pd.DataFrame({"region": ["atlantis"] * 1000, "amount": amount})
    m.observe(unseen, amount * 3)
    m.refresh()
    assert gauge(metrics, "model_server_feature_drift_psi", feature="region") > PSI_SIGNIFICANT
    assert gauge(metrics, "model_server_feature_drift_psi", feature="amount") < 0.01


def test_scrape_refreshes_scores_without_waiting_for_the_next_request():
    meta, x = iris_like_metadata()
    now = [0.0]
    m, metrics = monitor(meta, window=2000, refresh_seconds=60.0, clock=lambda: now[0])
    m.observe(x[:1000], np.array(["setosa"] * 1000))  # 0 s since the last refresh: not recomputed here
    text = generate_latest(metrics.registry).decode()  # what Prometheus reads: already up to date
    assert "model_server_drift_window_rows 1000.0" in text
    assert 'model_server_feature_drift_psi{feature="petal_length"}' in text
    m.close()  # the model is unloaded: scrapes no longer touch the monitor
    m.observe(x[:500], np.array(["setosa"] * 500))
    assert "model_server_drift_window_rows 1000.0" in generate_latest(metrics.registry).decode()


def test_bad_batches_are_skipped_without_raising():
    meta, x = iris_like_metadata()
    m, _ = monitor(meta, window=100)
    m.observe(x[:10, :2], np.array(["setosa"] * 10))  # too few columns: skipped, request unaffected
    m.observe(x[:10], np.array([["a", "b"]] * 10))  # not one prediction per row: skipped
    m.observe(np.array([["a", "b", "c", "d"]] * 10, dtype=object), np.array(["setosa"] * 10))  # not numbers
    assert m.window_rows == 0
    m.observe(x[:10], np.array(["setosa"] * 10))
    assert m.window_rows == 10


def test_concurrent_observers_keep_counts_consistent():
    meta, _ = iris_like_metadata()
    m, _ = monitor(meta, window=3000, refresh_seconds=0.0)
    batches = [RNG.normal(loc=[5.8, 3.0, 3.8, 1.2], size=(int(RNG.integers(1, 64)), 4)) for _ in range(400)]

    def work(part):
        for b in part:
            m.observe(b, np.array(["setosa"] * len(b)))

    threads = [threading.Thread(target=work, args=(batches[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(len(b) for b in batches)
    assert m.window_rows == min(3000, total)
    # the running counts are exactly the bins of what the ring holds: no lost or doubled update
    for c in range(m._ring.shape[1]):
        ring_counts = np.bincount(m._ring[: m.window_rows, c], minlength=m._counts.shape[1])
        assert m._counts[c].tolist() == ring_counts.tolist()


@settings(max_examples=60, deadline=None)
@given(
    edges=st.lists(
        st.lists(st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]), min_size=1, max_size=6, unique=True).map(
            sorted
        ),
        min_size=1,
        max_size=5,
    ),
    data=st.data(),
)
def test_numeric_rows_are_binned_at_once_exactly_as_column_by_column(edges, data):
    """The one-comparison path for numeric arrays must give every row the bin each feature's own
    searchsorted gives it: values on an edge, between, beyond both ends, infinite and NaN."""
    binners = [
        make_binner(f"f{j}", {"kind": "numeric", "edges": e, "counts": [1] * (len(e) + 1)})
        for j, e in enumerate(edges)
    ]
    values = st.sampled_from(
        [-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 9.0, math.inf, -math.inf, math.nan]
    )
    rows = np.array(
        data.draw(
            st.lists(st.lists(values, min_size=len(edges), max_size=len(edges)), min_size=1, max_size=8)
        )
    )
    m = DriftMonitor(binners, None, Metrics(), 100, refresh_seconds=1e9)
    assert m._edges is not None, "all-numeric features take the vectorised path"
    at_once = m._bin(rows, np.zeros(len(rows)))
    by_column = np.stack([b.bins(rows[:, j]) for j, b in enumerate(binners)], axis=1)
    assert at_once.tolist() == by_column.tolist()
