"""Adaptive micro-batching: rows from concurrent requests share one model call.

A scikit-learn ``predict`` has a large fixed cost per call (input validation, Python dispatch, one
pass over every tree of a forest) and a small cost per row, so 32 rows cost about as much as one.
Requests put their row block in a queue and await a future; a dispatcher takes as many queued rows
as fit in ``max_rows``, runs the model ONCE in a worker thread (the runtime's model call does
``predict``, plus ``predict_proba`` only when some request in the batch asked for probabilities) and
hands each request its slice of the result.

How long to wait for a batch to fill:
- nothing else queued: no wait at all, so a lone request pays no batching latency;
- otherwise wait until the OLDEST queued request has waited the batch wait (counted from its arrival
  or from the end of the previous model call, whichever is later), or the batch is full, whichever
  comes first. So the wait adds at most ``max_wait`` once the model is free, and a lone request never
  waits.
- the batch wait is ``max_wait`` capped at the recent duration of one model call (a moving
  average): waiting longer than a call takes cannot beat running this batch now and the next one
  after it. A 100-tree forest (~4 ms a call) waits the full ``max_wait``; a linear model (~0.3 ms)
  barely waits, which measured 2x the throughput at 8 connections compared with a fixed 2 ms.

Limits (rejections use the shared typed errors, so the HTTP layer maps them without guessing):
- the queue is bounded in ROWS (``queue_rows``), not requests: a request that does not fit raises
  ``Overloaded`` (429) at once instead of queueing without bound. A request larger than the whole
  queue is still accepted when the queue is empty, so that no valid request is unservable; the
  server's per-request row limit (``MAX_REQUEST_ROWS``) keeps that bounded.
- a request whose deadline passes while it is queued is dropped before the model call and raises
  ``DeadlineExceeded`` (504); one that is cancelled (client gone, request timeout) is dropped too.
- if the batched call raises, every request of the batch is retried alone in the same worker-thread
  call, so one bad row fails only its own request.
- ``concurrency`` batches may run at once (one per model thread): on one core that is 1, and the next
  batch fills while the current one runs.
- a model whose recent calls took less than ``inline_max`` seconds is called on the event loop
  itself: for a call that short, handing it to the model thread and its answer back (a thread
  wake-up, the GIL passed back and forth, a wake-up of the loop) costs about as much as the call.

Everything here runs on the event loop except ``infer``, which runs in the executor. This module does
not import the web framework (runtime layer).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence, Sized
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import DeadlineExceeded, NotReady, Overloaded
from ..metrics import Metrics

# A block of rows: a 2-D numpy array or a pandas DataFrame (anything with len() that ``concat`` joins).
Rows = Any
# The model's answer for a block of rows (the runtime's Prediction); len() is its number of rows.
R = TypeVar("R", bound=Sized)

__all__ = ["DeadlineExceeded", "MicroBatcher", "NotReady", "Overloaded", "concat_rows"]


def concat_rows(blocks: Sequence[Rows]) -> Rows:
    """Join row blocks in order: numpy arrays with one copy, DataFrames with pandas."""
    first = blocks[0]
    if len(blocks) == 1:
        return first
    if hasattr(first, "iloc"):  # a DataFrame (string features): keep dtypes and column names
        import pandas as pd

        return pd.concat(blocks, ignore_index=True)
    import numpy as np

    return np.concatenate(blocks, axis=0)


@dataclass(slots=True, eq=False)
class _Item(Generic[R]):
    rows: Rows
    n: int
    proba: bool
    future: asyncio.Future[R]
    enqueued: float
    deadline: float | None


class _PerRequest(list[Any]):
    """One result or exception per request of a batch (after a failed or unstackable batch)."""


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(
            DeadlineExceeded(
                "the request's deadline passed while it waited for the model (REQUEST_TIMEOUT_SECONDS)"
            )
        )


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class MicroBatcher(Generic[R]):
    """Gathers rows from concurrent ``submit`` calls into shared model calls.

    ``infer(rows, want_proba)``: the model call, run in ``executor``; returns a result for those rows.
    ``split(result, start, stop, keep_proba)``: that result's rows [start, stop), with probabilities
    only when ``keep_proba`` (a request that did not ask for them must not get them).
    ``max_rows``: most rows per model call (a single larger request still goes alone, unsplit).
    ``max_wait``: most seconds the oldest queued request may wait for others to join its batch.
    ``adaptive_wait``: cap that wait at the recent duration of one model call (see above).
    ``queue_rows``: most rows waiting; beyond it ``submit`` raises ``Overloaded``.
    ``concurrency``: batches in the executor at once (default 1: the next batch fills meanwhile).
    ``inline_max``: a batch is run on the event loop, not in ``executor``, while the recent model call
    (``call_seconds``) is shorter than this many seconds (0: always in ``executor``).
    """

    def __init__(
        self,
        infer: Callable[[Rows, bool], R],
        split: Callable[[R, int, int, bool], R],
        *,
        max_rows: int = 256,
        max_wait: float = 0.001,
        adaptive_wait: bool = True,
        queue_rows: int = 4096,
        concurrency: int = 1,
        inline_max: float = 0.0,
        executor: Executor | None = None,
        metrics: Metrics | None = None,
        concat: Callable[[Sequence[Rows]], Rows] = concat_rows,
    ) -> None:
        if max_rows < 1 or queue_rows < 1 or concurrency < 1 or max_wait < 0:
            raise ValueError("max_rows, queue_rows and concurrency must be >= 1, max_wait >= 0")
        self._infer = infer
        self._split = split
        self.max_rows = max_rows
        self.max_wait = max_wait
        self.adaptive_wait = adaptive_wait
        self.call_seconds = 0.0  # moving average of one batch's model call, as the event loop sees it
        self._last_done = 0.0  # time.monotonic() when the last model call returned
        self.queue_rows = queue_rows
        self.concurrency = concurrency
        self.inline_max = inline_max
        self.inline_calls = 0  # batches run on the event loop (tests, the bench)
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(concurrency, thread_name_prefix="model")
        self._metrics = metrics
        self._concat = concat
        self._queue: deque[_Item[R]] = deque()
        self._queued_rows = 0
        self._waiter: asyncio.Future[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False
        self.calls = 0  # model calls made (batched and fallback), for tests and the bench
        self.mean_request_rows = 1.0  # moving average of rows per submitted request (admission)
        self.row_seconds = 0.0  # moving average of model seconds per row of a batch (admission)

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    @property
    def queued_requests(self) -> int:
        return len(self._queue)

    def has_room(self, ahead: int, max_wait: float) -> bool:
        """Whether one more request of the usual size fits in the queue behind the queued rows and
        ``ahead`` requests of the usual size still on their way to it, and would reach the model
        within ``max_wait`` seconds at the recent model time per row. Checked before a request's
        body is read, so a request the queue would refuse, or keep waiting, is refused before it
        costs anything (see ModelRuntime.admits). A request with at most one full batch ahead of it
        is always let in: the model never idles for want of rows, and a lone request is never
        refused (which also keeps the estimates current)."""
        rows_ahead = self._queued_rows + ahead * self.mean_request_rows
        if rows_ahead <= self.max_rows:
            return True
        if rows_ahead + self.mean_request_rows > self.queue_rows:
            return False
        return rows_ahead * self.row_seconds <= max_wait

    async def submit(self, rows: Rows, *, proba: bool = False, deadline: float | None = None) -> R:
        """Queue ``rows`` and return the model's result for exactly these rows.

        ``deadline`` is an absolute ``time.monotonic()`` value; past it the request fails with
        ``DeadlineExceeded`` wherever it is (its rows are skipped if not yet sent to the model).
        """
        if self._closed:
            raise NotReady("the server is shutting down")
        n = len(rows)
        self.mean_request_rows += 0.1 * (n - self.mean_request_rows)
        if self._queue and self._queued_rows + n > self.queue_rows:
            raise Overloaded(
                f"the prediction queue is full ({self._queued_rows} rows waiting, limit {self.queue_rows} "
                "rows, BATCH_QUEUE_ROWS): retry later"
            )
        loop = asyncio.get_running_loop()
        if self._dispatcher is None:
            self._dispatcher = loop.create_task(self._dispatch(), name="micro-batcher")
        now = time.monotonic()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append(_Item(rows, n, proba, future, now, deadline))
        self._set_queued(self._queued_rows + n)
        waiter = self._waiter
        if waiter is not None and not waiter.done() and len(self._running) < self.concurrency:
            waiter.set_result(None)  # only when a batch could start: a busy dispatcher is woken by _finished
        timer = None if deadline is None else loop.call_later(max(deadline - now, 0.0), _expire, future)
        try:
            return await future
        finally:
            if timer is not None:
                timer.cancel()

    async def aclose(self) -> None:
        """Stop taking rows, let queued and running batches finish, then stop (and our threads)."""
        self._closed = True
        while self._queue or self._running:  # shutdown only: a short poll is simpler than another signal
            await asyncio.sleep(0.005)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            try:
                await self._dispatcher
            except asyncio.CancelledError:
                pass
            self._dispatcher = None
        if self._own_executor:
            self._executor.shutdown(wait=True)

    def close(self) -> None:
        """Stop at once (the runtime's close, after the drain): no new rows, the dispatcher ends."""
        self._closed = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            self._dispatcher = None

    # -- dispatcher side -------------------------------------------------------------------------

    def _set_queued(self, rows: int) -> None:
        self._queued_rows = rows
        if self._metrics is not None:
            self._metrics.batch_queue_rows.set(rows)

    async def _sleep(self, timeout: float | None) -> None:
        """Sleep until a request is queued or a batch finishes (or ``timeout`` seconds pass)."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def _dispatch(self) -> None:
        queue = self._queue
        while True:
            if not queue or len(self._running) >= self.concurrency:
                await self._sleep(None)
                continue
            wait = min(self.max_wait, self.call_seconds) if self.adaptive_wait else self.max_wait
            if wait > 0 and len(queue) > 1:
                # Others are queued, so load is concurrent: let the batch fill, bounded by the oldest's wait.
                # Counted from the later of its arrival and the end of the previous model call: the
                # clients that call answered come back within a round trip, and letting them join stops
                # the load from settling into two half-size batches that take turns (100-tree forest,
                # 64 connections: 33 -> 54 rows a call, mean latency 13-17 -> 11 ms).
                until = max(queue[0].enqueued, self._last_done) + wait
                while self._queued_rows < self.max_rows:
                    remaining = until - time.monotonic()
                    if remaining <= 0:
                        break
                    await self._sleep(remaining)
            batch = self._take()
            if batch:
                task = asyncio.get_running_loop().create_task(self._run(batch))
                self._running.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self) -> list[_Item[R]]:
        """Pop the next batch: up to ``max_rows`` rows (at least one request), skipping dead requests."""
        queue = self._queue
        batch: list[_Item[R]] = []
        rows = 0
        removed = 0
        now = time.monotonic()
        while queue:
            item = queue[0]
            if item.future.done():  # cancelled, or its deadline timer already failed it
                queue.popleft()
                removed += item.n
                continue
            if batch and rows + item.n > self.max_rows:
                break
            queue.popleft()
            removed += item.n
            if item.deadline is not None and now >= item.deadline:
                _expire(item.future)
                continue
            batch.append(item)
            rows += item.n
        self._set_queued(self._queued_rows - removed)
        if self._metrics is not None:
            wait = self._metrics.batch_queue_wait
            for item in batch:
                wait.observe(now - item.enqueued)
        return batch

    async def _run(self, batch: list[_Item[R]]) -> None:
        try:
            try:
                rows = self._concat([item.rows for item in batch])
            except Exception:  # noqa: BLE001 - blocks that do not stack: serve each request alone
                rows = None
            want_proba = any(item.proba for item in batch)
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            # Only once a call has been timed (in the thread): until then call_seconds says nothing.
            if self._last_done and self.call_seconds < self.inline_max:
                self.inline_calls += 1
                outcome = self._call(rows, want_proba, batch)
            else:
                outcome = await loop.run_in_executor(self._executor, self._call, rows, want_proba, batch)
            first = not self._last_done
            self._last_done = time.monotonic()
            if first:  # the averages start from the first call, not from 0
                self.call_seconds = self._last_done - started
            self.call_seconds += 0.2 * (self._last_done - started - self.call_seconds)
            per_row = (self._last_done - started) / max(1, sum(item.n for item in batch))
            self.row_seconds += 0.2 * (per_row - self.row_seconds)
            if isinstance(outcome, _PerRequest):
                for item, result in zip(batch, outcome, strict=True):
                    if item.future.done():
                        continue
                    if isinstance(result, BaseException):
                        item.future.set_exception(result)
                    else:
                        item.future.set_result(result)
                return
            start = 0
            for item in batch:
                stop = start + item.n
                if not item.future.done():
                    item.future.set_result(self._split(outcome, start, stop, item.proba))
                start = stop
        except Exception as exc:  # noqa: BLE001 - whatever happens, every waiting request gets an answer
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)

    def _call(self, rows: Rows | None, want_proba: bool, batch: list[_Item[R]]) -> R | _PerRequest:
        """Worker thread: one model call for the batch; on failure, one call per request."""
        if rows is not None:
            try:
                self.calls += 1
                result = self._infer(rows, want_proba)
                if len(result) != len(rows):
                    raise RuntimeError(f"the model gave {len(result)} predictions for {len(rows)} rows")
                return result
            except Exception as exc:  # noqa: BLE001 - isolate below
                if len(batch) == 1:
                    return _PerRequest([exc])
        outcomes = _PerRequest()
        for item in batch:
            try:
                self.calls += 1
                outcomes.append(self._infer(item.rows, item.proba))
            except Exception as exc:  # noqa: BLE001 - becomes that request's error
                outcomes.append(exc)
        return outcomes
