"""Admission before the body is read (MicroBatcher.has_room, MAX_QUEUE_WAIT_MS): a request is let in
while it fits BATCH_QUEUE_ROWS behind the queued rows and the usual rows of the requests on their way,
and would reach the model within the wait bound at the recent time per row; with at most one full
batch ahead of it, it is always let in."""

from __future__ import annotations

from typing import Any

from model_server.runtime.batching import MicroBatcher


def batcher(mean_rows: float, row_seconds: float) -> MicroBatcher[Any]:
    b: MicroBatcher[Any] = MicroBatcher(
        lambda rows, proba: rows, lambda r, a, z, p: r, max_rows=256, queue_rows=8192
    )
    b.mean_request_rows, b.row_seconds = mean_rows, row_seconds
    return b


def test_a_request_with_at_most_one_batch_ahead_is_always_let_in() -> None:
    slow = batcher(mean_rows=256, row_seconds=0.001)  # 256 ms for one batch: over a 250 ms bound
    assert slow.has_room(0, max_wait=0.0)
    assert slow.has_room(1, max_wait=0.25)
    assert not slow.has_room(2, max_wait=0.25)  # 512 rows ahead: 512 ms of model time


def test_a_lone_request_is_let_in_whatever_the_estimates() -> None:
    # After requests of 4,096 rows on a slow model, a single row must still get through (and so
    # bring the estimates back).
    assert batcher(mean_rows=4096, row_seconds=0.01).has_room(0, max_wait=0.0)


def test_the_wait_bound_follows_the_model_time_per_row() -> None:
    fast = batcher(mean_rows=256, row_seconds=0.0001)
    assert fast.has_room(9, max_wait=0.25)  # 2,304 rows ahead: 230 ms
    assert not fast.has_room(10, max_wait=0.25)  # 2,560 rows ahead: 256 ms


def test_the_queue_bound_holds_whatever_the_wait() -> None:
    instant = batcher(mean_rows=256, row_seconds=0.0)
    assert instant.has_room(31, max_wait=10.0)  # 7,936 rows ahead + its own 256: the queue exactly
    assert not instant.has_room(32, max_wait=10.0)


def test_single_row_requests_are_let_in_up_to_a_batch_at_any_speed() -> None:
    tiny = batcher(mean_rows=1, row_seconds=0.05)  # a model this slow: 50 ms a row
    assert tiny.has_room(64, max_wait=0.0)  # 64 rows ahead: within one batch of 256
