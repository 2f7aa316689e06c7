"""The runtime seam every prediction goes through: ``await runtime.predict(rows, proba=...)``."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from model_server.bundle.load import load_bundle
from model_server.errors import InvalidInput, NotReady
from model_server.features import InputSchema
from model_server.metrics import CONFIDENCE_BUCKETS, Metrics
from model_server.runtime.lifecycle import ModelRuntime, State
from model_server.runtime.predict import ModelCall
from model_server.settings import Settings
from model_server.types import Prediction
from prometheus_client import CollectorRegistry, Histogram


def loaded(bundle: Path, **settings: object) -> ModelRuntime:
    rt = ModelRuntime(Settings(**settings), Metrics(), bundle)  # type: ignore[arg-type]
    rt.load()
    return rt


def test_predict_runs_the_model_off_the_event_loop(iris_bundle: Path) -> None:
    rt = loaded(iris_bundle)
    seen: list[str] = []
    estimator = rt.bundle.estimator
    original = estimator.predict

    def spy(x):
        seen.append(threading.current_thread().name)
        return original(x)

    estimator.predict = spy
    rows = rt.schema.from_records(
        [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]
    )

    async def main() -> Prediction:
        loop_thread = threading.current_thread().name
        result = await rt.predict(rows, proba=True)
        assert seen and seen[0] != loop_thread
        return result

    pred = asyncio.run(main())
    rt.close()
    assert pred.predictions.tolist() == ["setosa"]
    assert pred.probabilities is not None and pred.probabilities.shape == (1, 3)
    assert seen[0].startswith("model")


def test_concurrent_predictions_each_get_their_own_rows(iris_bundle: Path) -> None:
    rt = loaded(iris_bundle)
    setosa = rt.schema.from_lists([[5.1, 3.5, 1.4, 0.2]])
    virginica = rt.schema.from_lists([[6.7, 3.0, 5.2, 2.3]] * 3)

    async def main() -> list[Prediction]:
        return await asyncio.gather(*[rt.predict(r, proba=False) for r in (setosa, virginica) * 10])

    results = asyncio.run(main())
    rt.close()
    assert [r.predictions.tolist() for r in results[:2]] == [["setosa"], ["virginica"] * 3]
    assert all(r.probabilities is None for r in results)


def test_predict_refuses_before_loading_and_probabilities_for_a_regressor(sales_bundle: Path) -> None:
    rt = ModelRuntime(Settings(), Metrics(), sales_bundle)
    with pytest.raises(NotReady, match="not ready"):
        asyncio.run(rt.predict(np.zeros((1, 4)), proba=False))
    rt.load()
    assert rt.state is State.READY
    rows = rt.schema.from_records([{"region": "north", "price": 10.0, "advertising": 100.0, "store_size": 2}])
    with pytest.raises(InvalidInput, match="no class probabilities"):
        asyncio.run(rt.predict(rows, proba=True))
    value = asyncio.run(rt.predict(rows, proba=False)).predictions
    rt.close()
    assert value.dtype == np.float64 and 0 < value[0] < 5000


def test_split_gives_a_request_its_rows_and_probabilities_only_if_asked() -> None:
    p = Prediction(np.array(["a", "b", "c"]), np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    part = p.split(1, 3, keep_proba=False)
    assert part.predictions.tolist() == ["b", "c"] and part.probabilities is None
    assert p.split(0, 1).probabilities.tolist() == [[1.0, 0.0]]


def test_metrics_count_rows_and_model_calls(iris_bundle: Path) -> None:
    rt = loaded(iris_bundle)
    rows = rt.schema.from_lists([[5.1, 3.5, 1.4, 0.2]] * 5)
    asyncio.run(rt.predict(rows, proba=False))
    reg = rt.metrics.registry
    rt.close()
    assert reg.get_sample_value("model_server_request_rows_sum") == 5
    # the warm-up call is not a request, and observers skip it
    assert reg.get_sample_value("model_server_batch_rows_count") == 1
    assert reg.get_sample_value("model_server_predicted_class_total", {"class_label": "setosa"}) == 5
    assert reg.get_sample_value("model_server_model_ready") == 0  # closed
    assert reg.get_sample_value("model_server_inference_duration_seconds_count", {"method": "predict"}) >= 1


CONFIDENCE = "model_server_prediction_confidence"


def confidence_samples(registry: CollectorRegistry) -> dict[tuple[str, str | None], float]:
    """The histogram's samples by (suffix, le): _bucket per edge, _count, _sum."""
    return {
        (s.name.removeprefix(CONFIDENCE), s.labels.get("le")): s.value
        for m in registry.collect()
        if m.name == CONFIDENCE
        for s in m.samples
        if not s.name.endswith("_created")
    }


def test_confidence_counts_the_top_probability_of_each_row_only_when_probabilities_are_asked(
    iris_bundle: Path,
) -> None:
    rt = loaded(iris_bundle)
    reg = rt.metrics.registry
    # the warm-up computes probabilities too, and is not traffic
    assert reg.get_sample_value(f"{CONFIDENCE}_count") == 0
    # clear-cut and borderline flowers, so the rows land in different buckets
    rows = rt.schema.from_lists(
        [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [6.0, 2.7, 5.1, 1.6], [6.3, 2.8, 5.1, 1.5]]
    )

    async def main() -> np.ndarray | None:  # one event loop: the micro-batcher is bound to it
        await rt.predict(rows, proba=False)
        assert reg.get_sample_value(f"{CONFIDENCE}_count") == 0  # no predict_proba just for the metric
        return (await rt.predict(rows, proba=True)).probabilities

    probabilities = asyncio.run(main())
    rt.close()
    assert probabilities is not None
    top = probabilities.max(axis=1)
    assert len(set(np.searchsorted(CONFIDENCE_BUCKETS, top).tolist())) > 1
    got = confidence_samples(reg)
    assert got[("_count", None)] == len(rows)
    assert got[("_sum", None)] == pytest.approx(top.sum())
    for edge in CONFIDENCE_BUCKETS:
        assert got[("_bucket", str(edge))] == (top <= edge).sum(), edge


class FixedProbabilities:
    """A classifier stub whose predict_proba returns the given rows, whatever the input."""

    def __init__(self, probabilities: np.ndarray) -> None:
        self.probabilities = probabilities

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.zeros(len(X), dtype=int)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.probabilities


def test_confidence_buckets_equal_observing_each_row_edges_included(iris_bundle: Path) -> None:
    meta = load_bundle(iris_bundle, Settings()).metadata
    schema = InputSchema.for_model(meta, 100)
    # tops exactly on edges (le is inclusive), between edges, and at both ends
    tops = np.array([*CONFIDENCE_BUCKETS, 0.5, 0.97, 0.33, 0.999, 1.0])
    # ten classes, the rest of each row spread over nine (capped at the top, so 0.1 stays the top)
    rest = np.minimum((1 - tops) / 9, tops)
    probabilities = np.column_stack([tops, *[rest] * 9])
    assert (probabilities.max(axis=1) == tops).all()
    metrics = Metrics(CollectorRegistry())
    call = ModelCall(FixedProbabilities(probabilities), schema, metrics, array_input=True)
    call(np.zeros((len(tops), 4)), True)
    reference = CollectorRegistry()
    hist = Histogram(CONFIDENCE, "reference", buckets=CONFIDENCE_BUCKETS, registry=reference)
    for value in probabilities.max(axis=1).tolist():
        hist.observe(value)
    got, want = confidence_samples(metrics.registry), confidence_samples(reference)
    assert got.keys() == want.keys()
    assert got == {k: pytest.approx(v) for k, v in want.items()}
    # record=False is the warm-up: nothing more is counted
    call(np.zeros((len(tops), 4)), True, record=False)
    assert confidence_samples(metrics.registry) == got


def test_a_confidence_that_cannot_be_recorded_does_not_fail_the_prediction(iris_bundle: Path) -> None:
    meta = load_bundle(iris_bundle, Settings()).metadata
    schema = InputSchema.for_model(meta, 100)
    metrics = Metrics(CollectorRegistry())
    call = ModelCall(FixedProbabilities(np.array([0.5, 0.5])), schema, metrics, array_input=True)
    result = call(np.zeros((2, 4)), True)  # one-dimensional "probabilities": no top per row
    assert result.predictions.tolist() == [0, 0]
    assert metrics.registry.get_sample_value(f"{CONFIDENCE}_count") == 0


def test_a_regressor_records_no_confidence(sales_bundle: Path) -> None:
    rt = loaded(sales_bundle)
    rows = rt.schema.from_records(
        [{"region": "north", "price": 10.0, "advertising": 100.0, "store_size": 2}] * 3
    )
    asyncio.run(rt.predict(rows, proba=False))
    reg = rt.metrics.registry
    rt.close()
    assert reg.get_sample_value("model_server_predicted_value_count") == len(rows)
    assert reg.get_sample_value(f"{CONFIDENCE}_count") == 0
