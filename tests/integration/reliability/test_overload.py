"""Overload on a real server process: offered several times what it sustains, it sheds with 429
instead of queueing, answers late work with 504 instead of computing it, keeps its memory flat and
its probes answering, and serves normally again once the load drops.

Assertions are on counts and states only: which statuses came back, that the server's own counters
agree with what the client saw, resident memory against a bound (chosen below), the in-flight gauge
back at zero. Latency percentiles are printed for the docs, never asserted.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from loadgen import Client, Request, Run, closed_loop, cycle, open_loop, summary
from overload import capacity
from procstat import Sample, sample
from support.serverproc import ServerProcess, http_get, start_server

MiB = 2**20
# Shedding: the chart's settings (batching on, MAX_IN_FLIGHT 64, 10 s deadline). 256-row requests
# make the sustainable rate low enough (~100/s here) for the Python client to offer 6 times it.
SHED_ENV = {"BATCHING": "on"}
HEAVY_ROWS = 256
OVERLOAD_FACTOR = 6
HALF_SECONDS = 5.0
# Flat memory: between the end of the first and of the second half of the overload. The server
# shed over a thousand 23 KB requests in each half; had it queued them instead, the second half
# alone would have added well over 100 MiB (raw bodies plus their parsed form). Allocator noise
# measured here is 1-3 MiB. 32 MiB sits far from both.
FLAT_BOUND = 32 * MiB
# Bounded memory: overload (64 requests in flight at most) against the idle, warmed-up server.
PEAK_BOUND = 64 * MiB


def rows_body(n: int) -> bytes:
    rows = [
        {
            "sepal_length": 4.5 + (i % 30) / 10,
            "sepal_width": 3.0,
            "petal_length": 1.0 + (i % 50) / 10,
            "petal_width": 0.2 + (i % 20) / 10,
        }
        for i in range(n)
    ]
    return json.dumps({"instances": rows} if n > 1 else rows[0]).encode()


def metrics(srv: ServerProcess) -> dict[str, float]:
    out = {}
    for line in http_get(srv.url("/metrics"))[1].decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def wait_idle(srv: ServerProcess) -> dict[str, float]:
    """The in-flight gauge and the batch queue back at zero (bounded number of looks)."""
    for _ in range(300):
        m = metrics(srv)
        if m["model_server_requests_in_flight"] == 0 and m.get("model_server_batch_queue_rows", 0) == 0:
            return m
        asyncio.run(asyncio.sleep(0.05))
    raise AssertionError(f"the server did not go idle: {m}")


async def _overload(srv: ServerProcess, rate: float) -> tuple[list[Run], list[Sample], Counter[int]]:
    heavy = cycle([Request("POST", "/predict", rows_body(HEAVY_ROWS), label="heavy")])
    probes: Counter[int] = Counter()
    done = asyncio.Event()

    async def probe() -> None:
        # The kubelet's view during the overload, on its own connection.
        client = Client(srv.base_url)
        while not done.is_set():
            for path in ("/healthz", "/readyz"):
                probes[(await client.send(Request("GET", path, headers=()))).status] += 1
            await asyncio.sleep(0.1)
        client.close()

    prober = asyncio.create_task(probe())
    runs, samples = [], []
    for half in range(2):
        runs.append(await open_loop(srv.base_url, heavy, rate, HALF_SECONDS))
        samples.append(sample(srv.pid, at=half + 1, requests=len(runs[-1].results)))
    done.set()
    await prober
    return runs, samples, probes


def test_overload_is_shed_memory_stays_flat_and_it_recovers(iris_bundle: Path, record_property: Any) -> None:
    with start_server(iris_bundle, env=SHED_ENV) as srv:
        heavy = cycle([Request("POST", "/predict", rows_body(HEAVY_ROWS))])
        sustainable = capacity(srv.base_url, heavy, concurrency=8, count=150)
        before = metrics(srv)  # the calibration may have been refused some too
        base = sample(srv.pid)
        runs, samples, probes = asyncio.run(_overload(srv, OVERLOAD_FACTOR * sustainable))
        after = wait_idle(srv)
        recovery = asyncio.run(
            closed_loop(
                srv.base_url, cycle([Request("POST", "/predict", rows_body(1))]), concurrency=2, count=100
            )
        )
        ready = http_get(srv.url("/readyz"))[0]
        final = sample(srv.pid)
        exit_code = srv.stop()

    results = [r for run in runs for r in run.results]
    statuses = Counter(r.status for r in results)
    # Shed, not failed: every answer is 200, 429 or 504; no 5xx, no dropped connection.
    assert set(statuses) <= {200, 429, 504}, summary(runs[0]) | summary(runs[1])
    assert statuses[429] > 0 and statuses[200] > 0, statuses
    assert all(r.status == 429 for r in results if r.status not in (200, 504))
    # Every refusal says when to come back.
    assert all(r.retry_after == "1" for r in results if r.status == 429), Counter(
        r.retry_after for r in results if r.status == 429
    )
    # The server counted every rejection the client saw.
    overloaded = 'model_server_prediction_errors_total{kind="overloaded"}'
    assert after[overloaded] - before.get(overloaded, 0) == statuses[429]
    assert after.get('model_server_prediction_errors_total{kind="deadline_exceeded"}', 0) == statuses[504]
    # Probes answered throughout: the kubelet would have kept the pod and kept it ready.
    assert set(probes) == {200}, probes
    # Memory: flat across the two halves, and bounded against the idle server.
    assert samples[1].rss_bytes - samples[0].rss_bytes <= FLAT_BOUND, (base, samples)
    assert max(s.rss_bytes for s in samples) - base.rss_bytes <= PEAK_BOUND, (base, samples)
    assert samples[1].threads <= base.threads + 2, (base, samples)
    # No file descriptor kept per refused or accepted request: the client's connections (at most
    # 256, the load generator's limit) are all the server may hold open beyond its own.
    assert samples[1].fds <= base.fds + 256 + 8, (base, samples)
    assert final.fds <= base.fds + 8 and final.threads <= base.threads + 2, (base, final)
    # Recovery: once the load stops, nothing is left in flight and every request is served.
    assert Counter(r.status for r in recovery.results) == {200: 100}
    assert ready == 200 and exit_code == 0

    figures = {
        "sustainable_per_s": round(sustainable, 1),
        "offered_per_s": round(OVERLOAD_FACTOR * sustainable, 1),
        "sent": len(results),
        "statuses": dict(statuses),
        "not_sent_by_client": sum(r.not_sent for r in runs),
        "halves": [summary(r) for r in runs],
        "probes": dict(probes),
        "rss_mib": {
            "idle": round(base.rss_mib, 1),
            "half_1": round(samples[0].rss_mib, 1),
            "half_2": round(samples[1].rss_mib, 1),
        },
        "recovery": summary(recovery)["statuses"],
    }
    print("overload:", json.dumps(figures))
    record_property("overload", figures)


# Deadline: a 100 ms deadline and a queue long enough to hold far more work than that, so requests
# that wait past their deadline get 504 whatever the machine's speed (32 requests of 4096 rows are
# seconds of model time on any CPU). Small requests on an idle server take milliseconds.
DEADLINE_ENV = {"BATCHING": "on", "REQUEST_TIMEOUT_SECONDS": "0.1", "BATCH_QUEUE_ROWS": "1000000"}


def test_work_past_its_deadline_gets_504_and_is_not_computed(iris_bundle: Path, record_property: Any) -> None:
    with start_server(iris_bundle, env=DEADLINE_ENV) as srv:
        huge = cycle([Request("POST", "/predict", rows_body(4096), label="huge")])
        client_view = asyncio.run(closed_loop(srv.base_url, huge, concurrency=32, count=96))
        after = wait_idle(srv)
        recovery = asyncio.run(
            closed_loop(
                srv.base_url, cycle([Request("POST", "/predict", rows_body(1))]), concurrency=1, count=20
            )
        )
        late = [r for r in client_view.results if r.status == 504]
        probe = asyncio.run(
            Client(srv.base_url, keep_body=True).send(Request("POST", "/predict", rows_body(4096)))
        )

    statuses = Counter(r.status for r in client_view.results)
    assert set(statuses) <= {200, 429, 504}, statuses
    assert late, statuses
    assert after['model_server_prediction_errors_total{kind="deadline_exceeded"}'] == len(late)
    # Abandoned work is dropped before the model call: far fewer rows reached the model than were sent.
    rows_sent = 4096 * len(client_view.results)
    rows_computed = after["model_server_batch_rows_sum"]
    assert rows_computed < rows_sent / 2, (rows_computed, rows_sent)
    assert Counter(r.status for r in recovery.results) == {200: 20}
    if probe.status == 504:
        assert "REQUEST_TIMEOUT_SECONDS" in json.loads(probe.body)["error"]

    figures = {
        "sent": len(client_view.results),
        "statuses": dict(statuses),
        "rows_sent": rows_sent,
        "rows_computed": int(rows_computed),
        "recovery": dict(Counter(r.status for r in recovery.results)),
    }
    print("deadline:", json.dumps(figures))
    record_property("deadline", figures)


pytestmark = pytest.mark.slow
