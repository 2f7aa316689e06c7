"""The runtime seam every prediction goes through: ``await runtime.predict(rows, proba=...)``."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from model_server.errors import InvalidInput, NotReady
from model_server.metrics import Metrics
from model_server.runtime.lifecycle import ModelRuntime, State
from model_server.settings import Settings
from model_server.types import Prediction


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
