"""Unit tests of the micro-batcher with a fake model: calls are counted, never timed.

The fake model blocks on a gate while the test queues more requests, so "these requests were
queued while the model was busy" is a fact the test arranges, not a race it hopes to win.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from model_server.errors import DeadlineExceeded, NotReady, Overloaded
from model_server.metrics import Metrics
from model_server.runtime.batching import MicroBatcher
from prometheus_client import CollectorRegistry


@dataclass
class Out:
    """The fake model's result: labels and optional probabilities, len() = rows (like Prediction)."""

    labels: np.ndarray
    proba: np.ndarray | None

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[np.ndarray | None]:
        return iter((self.labels, self.proba))

    def __getitem__(self, i: int) -> np.ndarray | None:
        return (self.labels, self.proba)[i]


def split(out: Out, start: int, stop: int, keep_proba: bool) -> Out:
    proba = out.proba[start:stop] if keep_proba and out.proba is not None else None
    return Out(out.labels[start:stop], proba)


def batcher(model: Callable[..., Out], **kw: float) -> MicroBatcher[Out]:
    return MicroBatcher(model, split, **kw)  # type: ignore[arg-type]


class FakeModel:
    """label = 10 * first column; probabilities = [x, 1 - x] of the first column. Records every call."""

    def __init__(self, fail_on: float | None = None) -> None:
        self.calls: list[tuple[int, bool]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_on = fail_on
        self.threads: set[str] = set()

    def __call__(self, rows: np.ndarray, proba: bool) -> Out:
        self.threads.add(threading.current_thread().name)
        self.calls.append((len(rows), proba))
        self.entered.set()
        self.gate.wait()
        first = np.asarray(rows)[:, 0].astype(float)
        if self.fail_on is not None and np.any(first == self.fail_on):
            raise ValueError(f"cannot predict {self.fail_on}")
        labels = first * 10
        probs = np.column_stack([first, 1 - first]) if proba else None
        return Out(labels, probs)


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro_fn())  # type: ignore[arg-type]


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds (bounded by steps, not time)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def until_thread(event: threading.Event) -> None:
    for _ in range(100_000):
        if event.is_set():
            return
        await asyncio.sleep(0)
    assert event.wait(30), "the model was never called"


def row(x: float, width: int = 3) -> np.ndarray:
    return np.full((1, width), x)


def test_lone_request_gets_its_own_rows_back() -> None:
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=0)
        labels, proba = await b.submit(np.array([[0.1, 0, 0], [0.2, 0, 0]]))
        assert labels.tolist() == [1.0, 2.0]
        assert proba is None
        await b.aclose()

    run(main)
    assert model.calls == [(2, False)]


@pytest.mark.timeout(60)
def test_lone_request_does_not_wait_for_a_batch() -> None:
    """An hour-long max_wait must not apply when nothing else is queued (else this hangs)."""
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=3600)
        for x in (0.1, 0.2, 0.3):
            labels, _ = await b.submit(row(x))
            assert labels.tolist() == [pytest.approx(x * 10)]
        await b.aclose()

    run(main)
    assert model.calls == [(1, False)] * 3


def test_requests_queued_while_the_model_runs_share_one_call_and_get_their_own_slices() -> None:
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=0, max_rows=64)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0.5)))
        await until_thread(model.entered)
        sizes = [1, 3, 2, 1, 4]
        blocks = [np.column_stack([np.arange(n) + 100 * i, np.zeros((n, 2))]) for i, n in enumerate(sizes)]
        tasks = [asyncio.create_task(b.submit(block)) for block in blocks]
        await until(lambda: b.queued_rows == sum(sizes))
        model.gate.set()
        assert (await first)[0].tolist() == [5.0]
        for block, task in zip(blocks, tasks, strict=True):
            labels, _ = await task
            assert labels.tolist() == (block[:, 0] * 10).tolist()
        await b.aclose()

    run(main)
    assert model.calls == [(1, False), (11, False)]


def test_batch_is_capped_in_rows_and_never_splits_a_request() -> None:
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=0, max_rows=4)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0)))
        await until_thread(model.entered)
        tasks = [asyncio.create_task(b.submit(np.full((n, 2), float(n)))) for n in (2, 2, 3, 6, 1)]
        await until(lambda: b.queued_rows == 14)
        model.gate.set()
        await first
        for n, task in zip((2, 2, 3, 6, 1), tasks, strict=True):
            labels, _ = await task
            assert labels.tolist() == [n * 10.0] * n
        await b.aclose()

    run(main)
    # 2+2 fill the first batch; 3 alone (3+6 > 4); 6 alone although over max_rows; then 1.
    assert [n for n, _ in model.calls] == [1, 4, 3, 6, 1]


def test_probabilities_and_labels_share_one_call() -> None:
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=0)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0.9)))
        await until_thread(model.entered)
        wants = asyncio.create_task(b.submit(np.array([[0.25, 0], [0.75, 0]]), proba=True))
        plain = asyncio.create_task(b.submit(row(0.5, 2)))
        await until(lambda: b.queued_rows == 3)
        model.gate.set()
        await first
        labels, proba = await wants
        assert labels.tolist() == [2.5, 7.5]
        assert proba.tolist() == [[0.25, 0.75], [0.75, 0.25]]
        labels, proba = await plain
        assert labels.tolist() == [5.0]
        assert proba is None, "a request that did not ask for probabilities gets none"
        await b.aclose()

    run(main)
    assert model.calls == [(1, False), (3, True)]


def test_a_failing_row_fails_only_its_own_request() -> None:
    model = FakeModel(fail_on=0.666)

    async def main() -> None:
        b = batcher(model, max_wait=0)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0.1)))
        await until_thread(model.entered)
        good1 = asyncio.create_task(b.submit(row(0.2)))
        bad = asyncio.create_task(b.submit(np.array([[0.3, 0, 0], [0.666, 0, 0]])))
        good2 = asyncio.create_task(b.submit(row(0.4), proba=True))
        await until(lambda: b.queued_rows == 4)
        model.gate.set()
        await first
        assert (await good1)[0].tolist() == [2.0]
        with pytest.raises(ValueError, match=r"cannot predict 0\.666"):
            await bad
        labels, proba = await good2
        assert labels.tolist() == [4.0]
        assert proba.tolist() == [[0.4, 0.6]]
        # The batcher keeps serving after the failure.
        assert (await b.submit(row(0.7)))[0].tolist() == [7.0]
        await b.aclose()

    run(main)
    # one batched call that failed, then one call per request of that batch, then the next request
    assert model.calls == [(1, False), (4, True), (1, False), (2, False), (1, True), (1, False)]


def test_a_lone_failing_request_is_not_retried() -> None:
    model = FakeModel(fail_on=0.5)

    async def main() -> None:
        b = batcher(model, max_wait=0)
        with pytest.raises(ValueError):
            await b.submit(row(0.5))
        await b.aclose()

    run(main)
    assert model.calls == [(1, False)]


def test_full_queue_sheds_with_overloaded_and_recovers() -> None:
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=0, queue_rows=5)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0.1)))
        await until_thread(model.entered)
        queued = [asyncio.create_task(b.submit(np.full((2, 1), 0.2))) for _ in range(2)]
        await until(lambda: b.queued_rows == 4)
        with pytest.raises(Overloaded, match="queue is full"):
            await b.submit(np.full((2, 1), 0.3))  # 4 + 2 > 5
        one_more = asyncio.create_task(b.submit(row(0.4)))  # 4 + 1 fits exactly
        await until(lambda: b.queued_rows == 5)
        model.gate.set()
        await first
        for task in queued:
            assert (await task)[0].tolist() == [2.0, 2.0]
        assert (await one_more)[0].tolist() == [4.0]
        # Drained: the same request that was shed is served now.
        assert (await b.submit(np.full((2, 1), 0.3)))[0].tolist() == [3.0, 3.0]
        await b.aclose()

    run(main)


def test_request_larger_than_the_queue_is_served_when_the_queue_is_empty() -> None:
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=0, queue_rows=2, max_rows=2)
        labels, _ = await b.submit(np.full((5, 1), 0.1))
        assert len(labels) == 5
        await b.aclose()

    run(main)
    assert model.calls == [(5, False)]


def test_expired_deadline_is_dropped_before_the_model_call() -> None:
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=0)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0.1)))
        await until_thread(model.entered)
        late = asyncio.create_task(b.submit(row(0.2), deadline=time.monotonic() - 1))
        on_time = asyncio.create_task(b.submit(row(0.3), deadline=time.monotonic() + 3600))
        with pytest.raises(DeadlineExceeded):
            await late  # fails while still queued, without waiting for the busy model
        assert not on_time.done()
        model.gate.set()
        await first
        assert (await on_time)[0].tolist() == [3.0]
        await b.aclose()

    run(main)
    assert model.calls == [(1, False), (1, False)], "the expired request's rows never reached the model"


def test_cancelled_request_is_skipped() -> None:
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=0)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0.1)))
        await until_thread(model.entered)
        gone = asyncio.create_task(b.submit(np.full((7, 1), 0.2)))
        kept = asyncio.create_task(b.submit(row(0.3)))
        await until(lambda: b.queued_rows == 8)
        gone.cancel()
        await until(gone.done)
        model.gate.set()
        await first
        assert (await kept)[0].tolist() == [3.0]
        await b.aclose()

    run(main)
    assert model.calls == [(1, False), (1, False)]


@pytest.mark.timeout(60)
def test_max_wait_lets_a_batch_fill_and_a_full_batch_leaves_at_once() -> None:
    """With an hour-long max_wait, the batch must leave as soon as it is full (else this hangs)."""
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=3600, max_rows=4, adaptive_wait=False)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0.1)))
        await until_thread(model.entered)
        early = [asyncio.create_task(b.submit(row(0.2))) for _ in range(2)]
        await until(lambda: b.queued_rows == 2)
        model.gate.set()
        await first
        # Two requests queued: the consumer waits for more rather than sending a batch of 2.
        for _ in range(100):
            await asyncio.sleep(0)
        assert len(model.calls) == 1
        late = [asyncio.create_task(b.submit(row(0.3))) for _ in range(2)]
        results = await asyncio.gather(*early, *late)
        assert [r[0].tolist() for r in results] == [[2.0], [2.0], [3.0], [3.0]]
        await b.aclose()

    run(main)
    assert model.calls == [(1, False), (4, False)]


@pytest.mark.timeout(60)
def test_adaptive_wait_is_capped_by_the_duration_of_a_model_call() -> None:
    """With an hour-long max_wait, two queued requests still leave after about one model call
    (else this hangs): waiting longer than a call takes cannot beat running the batch now."""
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=3600, max_rows=64)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0.1)))
        await until_thread(model.entered)
        early = [asyncio.create_task(b.submit(row(0.2))) for _ in range(2)]
        await until(lambda: b.queued_rows == 2)
        model.gate.set()
        await first
        assert 0 < b.call_seconds < 3600
        results = await asyncio.gather(*early)
        assert [r[0].tolist() for r in results] == [[2.0], [2.0]]
        await b.aclose()

    run(main)
    assert model.calls == [(1, False), (2, False)]


def test_concurrent_load_every_request_gets_exactly_its_answer() -> None:
    model = FakeModel()
    total_rows: list[int] = []

    async def main() -> None:
        b = batcher(model, max_wait=0.0005, max_rows=32)
        rng = np.random.default_rng(7)
        blocks = [rng.random((int(rng.integers(1, 6)), 4)) for _ in range(500)]
        total_rows.append(sum(len(x) for x in blocks))
        results = await asyncio.gather(*(b.submit(x, proba=bool(i % 3 == 0)) for i, x in enumerate(blocks)))
        for i, (x, (labels, proba)) in enumerate(zip(blocks, results, strict=True)):
            np.testing.assert_allclose(labels, x[:, 0] * 10)
            if i % 3 == 0:
                np.testing.assert_allclose(proba[:, 0], x[:, 0])
            else:
                assert proba is None
        await b.aclose()

    run(main)
    assert sum(n for n, _ in model.calls) == total_rows[0], "every row reached the model exactly once"
    assert len(model.calls) < 500, "concurrent requests were batched"
    assert max(n for n, _ in model.calls) <= 32
    assert model.threads and all(name.startswith("model") for name in model.threads), "off the event loop"


def test_dataframe_rows_are_concatenated_with_their_columns() -> None:
    seen: list[pd.DataFrame] = []
    gate = threading.Event()

    def model(rows: pd.DataFrame, proba: bool) -> Out:
        gate.wait()
        seen.append(rows)
        return Out((rows["city"] + ":" + rows["x"].astype(str)).to_numpy(), None)

    async def main() -> None:
        b = batcher(model, max_wait=0)
        first = asyncio.create_task(b.submit(pd.DataFrame({"city": ["a"], "x": [1]})))
        await asyncio.sleep(0)
        t2 = asyncio.create_task(b.submit(pd.DataFrame({"city": ["b", "c"], "x": [2, 3]})))
        t3 = asyncio.create_task(b.submit(pd.DataFrame({"city": ["d"], "x": [4]})))
        await until(lambda: b.queued_rows >= 3)
        gate.set()
        assert (await first)[0].tolist() == ["a:1"]
        assert (await t2)[0].tolist() == ["b:2", "c:3"]
        assert (await t3)[0].tolist() == ["d:4"]
        await b.aclose()

    run(main)
    assert list(seen[-1].columns) == ["city", "x"]


def test_metrics_record_queue_wait_and_queue_depth() -> None:
    """Rows per model call are recorded by the runtime's model call itself, not here (no double count)."""
    model = FakeModel()
    metrics = Metrics(CollectorRegistry())

    async def main() -> None:
        b = batcher(model, max_wait=0, metrics=metrics)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0.1)))
        await until_thread(model.entered)
        tasks = [asyncio.create_task(b.submit(np.full((3, 1), 0.2))) for _ in range(2)]
        await until(lambda: b.queued_rows == 6)
        assert metrics.registry.get_sample_value("model_server_batch_queue_rows") == 6
        model.gate.set()
        await asyncio.gather(first, *tasks)
        await b.aclose()

    run(main)
    value = metrics.registry.get_sample_value
    assert model.calls == [(1, False), (6, False)]
    assert value("model_server_batch_rows_count") == 0
    assert value("model_server_batch_queue_wait_seconds_count") == 3  # one wait per request
    assert value("model_server_batch_queue_rows") == 0


def test_close_finishes_queued_requests_then_refuses_new_ones() -> None:
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=0)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0.1)))
        await until_thread(model.entered)
        queued = asyncio.create_task(b.submit(row(0.2)))
        await until(lambda: b.queued_rows == 1)
        closing = asyncio.create_task(b.aclose())
        await asyncio.sleep(0)
        with pytest.raises(NotReady):
            await b.submit(row(0.3))
        model.gate.set()
        await closing
        assert (await first)[0].tolist() == [1.0]
        assert (await queued)[0].tolist() == [2.0]

    run(main)


def test_concurrency_two_runs_a_second_batch_while_the_first_is_busy() -> None:
    model = FakeModel()
    second_entered = threading.Event()
    original = model.__call__

    def call(rows: np.ndarray, proba: bool) -> Out:
        if len(model.calls) == 1:  # the second call must not wait for the first (gated) one
            model.calls.append((len(rows), proba))
            second_entered.set()
            return Out(np.asarray(rows)[:, 0] * 10, None)
        return original(rows, proba)

    async def main() -> None:
        b = batcher(call, max_wait=0, concurrency=2)
        model.gate.clear()
        first = asyncio.create_task(b.submit(row(0.1)))
        await until_thread(model.entered)
        second = asyncio.create_task(b.submit(row(0.2)))
        await until_thread(second_entered)
        assert (await second)[0].tolist() == [2.0]
        assert not first.done()
        model.gate.set()
        assert (await first)[0].tolist() == [1.0]
        await b.aclose()

    run(main)


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        batcher(FakeModel(), max_rows=0)
    with pytest.raises(ValueError):
        batcher(FakeModel(), max_wait=-1)


def test_calls_known_to_be_fast_run_on_the_event_loop() -> None:
    """INLINE_PREDICT_MAX_MS: the first call is timed in the model thread; once timed as fast, calls
    run on the event loop's own thread."""
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=0, inline_max=3600.0)
        for x in (0.1, 0.2, 0.3):
            labels, _ = await b.submit(row(x))
            assert labels.tolist() == [pytest.approx(x * 10)]
        assert b.inline_calls == 2
        await b.aclose()

    run(main)
    assert model.calls == [(1, False)] * 3
    assert model.threads == {"model_0", threading.main_thread().name}


def test_calls_slower_than_the_bound_stay_in_the_model_thread() -> None:
    model = FakeModel()

    async def main() -> None:
        b = batcher(model, max_wait=0, inline_max=1e-12)
        for x in (0.1, 0.2, 0.3):
            await b.submit(row(x))
        assert b.inline_calls == 0
        await b.aclose()

    run(main)
    assert threading.main_thread().name not in model.threads


def test_no_call_runs_on_the_event_loop_before_one_was_timed() -> None:
    """A second batch that starts while the first (untimed) call still runs goes to a thread too: a
    slow model must never block the event loop because nothing was known about it yet."""
    model = FakeModel()
    model.gate.clear()

    async def main() -> None:
        b = batcher(model, max_wait=0, inline_max=3600.0, concurrency=2)
        first = asyncio.ensure_future(b.submit(row(0.1)))
        await until_thread(model.entered)
        second = asyncio.ensure_future(b.submit(row(0.2)))
        await until(lambda: len(model.calls) == 2)
        model.gate.set()
        await asyncio.gather(first, second)
        assert b.inline_calls == 0
        await b.aclose()

    run(main)
    assert threading.main_thread().name not in model.threads
