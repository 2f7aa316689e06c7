"""Refusals before the app (http/shedding.py), on a real server process: a burst of single-row
requests several times what the server takes at once is refused as soon as each request's headers
are read, with the 429, Retry-After and counters of any refusal, while the requests let in all
succeed, the probes answer, and nothing is left behind.

Counts and states only. The in-flight limit is made small (MAX_IN_FLIGHT 4) and, in the first test,
filled by requests whose bodies are held back, so which requests are let in does not depend on the
machine's speed.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from pathlib import Path
from typing import Any

from loadgen import Client, Request, closed_loop, cycle
from procstat import sample
from support.serverproc import ServerProcess, http_get, start_server, wait_until

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
LIMIT = 4
ENV = {"BATCHING": "on", "MAX_IN_FLIGHT": str(LIMIT), "GRPC_ENABLED": "false"}
# The burst: 50 times the in-flight limit, from 100 connections at once (each sends its next request
# as soon as the last is answered).
BURST = 200
CONNECTIONS = 100


def metrics(srv: ServerProcess) -> dict[str, float]:
    out = {}
    for line in http_get(srv.url("/metrics"))[1].decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


class Held:
    """A prediction whose last body bytes are held back: in flight until released."""

    def __init__(self, srv: ServerProcess, n: int) -> None:
        self.body = json.dumps(ROW).encode()
        self.sock = socket.create_connection(("127.0.0.1", srv.port))
        head = (
            "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\nX-Request-ID: held-{n}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + self.body[:10])

    def release(self) -> int:
        self.sock.sendall(self.body[10:])
        data = b""
        while not data.rstrip().endswith(b"}"):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        self.sock.close()
        return int(data.split()[1])


def refusals_in_log(srv: ServerProcess) -> tuple[int, int]:
    """(refusals made by the protocol, refusals made by the app), from the log lines."""
    protocol = app = 0
    for line in srv.log_lines():
        if line.get("refused_at") == "headers":
            protocol += int(line.get("refused", 1))
        elif line.get("msg") == "request" and line.get("status") == 429:
            app += 1
    return protocol, app


async def _burst(srv: ServerProcess) -> tuple[list[Any], Counter[int]]:
    probes: Counter[int] = Counter()
    done = asyncio.Event()

    async def probe() -> None:
        client = Client(srv.base_url)
        while not done.is_set():
            for path in ("/healthz", "/readyz"):
                probes[(await client.send(Request("GET", path, headers=()))).status] += 1
            await asyncio.sleep(0.02)
        client.close()

    prober = asyncio.create_task(probe())
    requests = cycle([Request("POST", "/predict", json.dumps(ROW).encode())])
    run = await closed_loop(srv.base_url, requests, CONNECTIONS, count=BURST)
    done.set()
    await prober
    return run.results, probes


def test_a_burst_at_the_limit_is_refused_before_the_app_and_the_admitted_all_succeed(
    iris_bundle: Path, record_property: Any
) -> None:
    with start_server(iris_bundle, env=ENV) as srv:
        base = sample(srv.pid)
        held = [Held(srv, n) for n in range(LIMIT)]
        wait_until(lambda: metrics(srv)["model_server_requests_in_flight"] == LIMIT, 10, "4 held in flight")
        results, probes = asyncio.run(_burst(srv))
        during = sample(srv.pid)
        released = [h.release() for h in held]
        after = metrics(srv)
        served = asyncio.run(
            closed_loop(
                srv.base_url, cycle([Request("POST", "/predict", json.dumps(ROW).encode())]), 2, count=50
            )
        )
        wait_until(lambda: sum(refusals_in_log(srv)) >= BURST, 5, "every refusal in the log")
        protocol, app = refusals_in_log(srv)
        final = sample(srv.pid)

    statuses = Counter(r.status for r in results)
    # The limit was full the whole burst: every request of it was refused, none reached the model.
    assert statuses == {429: BURST}, statuses
    assert all(r.retry_after == "1" for r in results)
    # ... by the protocol, before the app: none by the middleware.
    assert (protocol, app) == (BURST, 0)
    # The held requests, let in before the burst, all succeed once their bodies arrive.
    assert released == [200] * LIMIT
    # Counted like any refusal.
    assert after['model_server_prediction_errors_total{kind="overloaded"}'] == BURST
    assert after['model_server_requests_total{code="429",protocol="named",route="/predict"}'] == BURST
    assert after["model_server_requests_in_flight"] == 0
    # Probes answered throughout; afterwards every request is served (nothing left counted in flight).
    assert set(probes) == {200}, probes
    assert Counter(r.status for r in served.results) == {200: 50}
    # Nothing kept per refused request: no thread, no descriptor beyond the client's connections.
    assert during.threads <= base.threads + 2 and final.threads <= base.threads + 2, (base, during, final)
    assert during.fds <= base.fds + CONNECTIONS + LIMIT + 8 and final.fds <= base.fds + 8, (
        base,
        during,
        final,
    )
    record_property("shedding", {"statuses": dict(statuses), "probes": dict(probes)})


def test_a_burst_of_single_rows_gets_200_or_429_and_the_counts_add_up(iris_bundle: Path) -> None:
    with start_server(iris_bundle, env=ENV) as srv:
        base = sample(srv.pid)
        results, probes = asyncio.run(_burst(srv))
        wait_until(lambda: metrics(srv)["model_server_requests_in_flight"] == 0, 10, "nothing in flight")
        after = metrics(srv)
        served = asyncio.run(
            closed_loop(
                srv.base_url, cycle([Request("POST", "/predict", json.dumps(ROW).encode())]), 2, count=50
            )
        )
        statuses = Counter(r.status for r in results)
        wait_until(lambda: sum(refusals_in_log(srv)) >= statuses[429], 5, "every refusal in the log")
        protocol, app = refusals_in_log(srv)
        final = sample(srv.pid)

    # 100 connections against a limit of 4: some let in, all of those served; the rest refused.
    assert set(statuses) == {200, 429}, statuses
    assert all(r.retry_after == "1" for r in results if r.status == 429)
    assert after['model_server_prediction_errors_total{kind="overloaded"}'] == statuses[429]
    assert after['model_server_requests_total{code="200",protocol="named",route="/predict"}'] == statuses[200]
    # Every refusal is in the log, one line each or counted in a line a second; most by the protocol.
    assert protocol + app == statuses[429] and protocol > app, (protocol, app, statuses)
    assert set(probes) == {200}, probes
    assert Counter(r.status for r in served.results) == {200: 50}
    assert final.threads <= base.threads + 2 and final.fds <= base.fds + 8, (base, final)
