"""Faults a cluster throws at the server, with real processes on loopback: rolling restarts under
steady load, a model that loads slowly, a model that never loads.

The rollout is played the way Kubernetes plays it. Clients spread requests round-robin over an
endpoint list (what kube-proxy does with a Service's endpoints) and never retry. A new server starts
and joins the list once ready; the old one leaves the list, then (after the preStop delay) gets
SIGTERM. A second rollout skips the preStop delay: SIGTERM first, and the endpoint leaves only once
the old server's readiness says 503, as the kubelet would notice. Every request the old server
accepted (its log has the request id) must have been answered 200.

No assertion depends on timing: phases advance on counts of answered requests and on states
(readiness, the in-flight gauge), and the slow load is a model read through a FIFO that the test
fills when it chooses.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from loadgen import Client, Request, Result
from support.serverproc import ServerProcess, http_get, start_server

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
PREDICT = Request("POST", "/predict", json.dumps(ROW).encode(), label="predict")
# Several rows per request, so that a request spends a while in the server and some are in flight
# whenever SIGTERM lands.
BATCH = Request("POST", "/predict", json.dumps({"instances": [ROW] * 64}).encode(), label="batch")
ENV = {"BATCHING": "on", "SHUTDOWN_GRACE_SECONDS": "20"}
WORKERS = 4


def metric(srv: ServerProcess, name: str) -> float:
    for line in http_get(srv.url("/metrics"))[1].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


@dataclass
class Fleet:
    """Endpoints (a Service's ready pods) and clients that send to them round-robin, no retries."""

    endpoints: list[str]
    results: list[tuple[str, Result]] = field(default_factory=list)
    outstanding: Counter[str] = field(default_factory=Counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    turn: int = 0

    def served_by(self, url: str) -> int:
        return sum(1 for u, _ in self.results if u == url)

    async def worker(self, index: int) -> None:
        clients: dict[str, Client] = {}
        n = 0
        while not self.stop.is_set():
            self.turn += 1
            url = self.endpoints[self.turn % len(self.endpoints)]
            client = clients.setdefault(url, Client(url))
            self.outstanding[url] += 1
            try:
                result = await client.send(BATCH if n % 4 == 0 else PREDICT)
            finally:
                self.outstanding[url] -= 1
            self.results.append((url, result))
            n += 1
        for c in clients.values():
            c.close()

    async def until(self, check: object, what: str, limit: int = 3000) -> None:
        """Let the load run until ``check()`` holds (polled between requests, bounded by a count)."""
        for _ in range(limit):
            if check():  # type: ignore[operator]
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"gave up waiting for {what}")


class HeldRequest:
    """A prediction whose body is sent in two halves: in flight, deterministically, until released."""

    def __init__(self, srv: ServerProcess) -> None:
        self.body = json.dumps(ROW).encode()
        self.sock = socket.create_connection(("127.0.0.1", srv.port))
        head = (
            f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\nX-Request-ID: held-request\r\n\r\n"
        )
        self.sock.sendall(head.encode() + self.body[:10])

    def release(self) -> tuple[int, dict[str, object]]:
        self.sock.sendall(self.body[10:])
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        self.sock.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)


async def _start(bundle: Path) -> ServerProcess:
    return await asyncio.to_thread(start_server, bundle, ENV)


async def _rollouts(iris_bundle: Path) -> dict[str, object]:
    a = await _start(iris_bundle)
    fleet = Fleet([a.base_url])
    workers = [asyncio.create_task(fleet.worker(i)) for i in range(WORKERS)]
    facts: dict[str, object] = {}
    servers = [a]
    try:
        await fleet.until(lambda: fleet.served_by(a.base_url) >= 100, "A to serve 100 requests")

        # -- rollout 1, as the chart configures it: B ready, A leaves the endpoints, preStop, SIGTERM.
        b = await _start(iris_bundle)
        servers.append(b)
        fleet.endpoints.append(b.base_url)
        await fleet.until(lambda: fleet.served_by(b.base_url) >= 50, "B to serve 50 requests")
        held = HeldRequest(a)
        fleet.endpoints.remove(a.base_url)
        await fleet.until(lambda: fleet.outstanding[a.base_url] == 0, "A's last routed request")
        await fleet.until(lambda: metric(a, "model_server_requests_in_flight") == 1, "the held request")
        await asyncio.sleep(1.0)  # the preStop sleep (chart: preStopSleepSeconds); nothing waits on it
        a.proc.terminate()
        await fleet.until(lambda: http_get(a.url("/readyz"))[0] == 503, "A's readiness to drop")
        facts["draining_readyz"] = json.loads(http_get(a.url("/readyz"))[1])
        facts["draining_healthz"] = http_get(a.url("/healthz"))[0]
        facts["held"] = await asyncio.to_thread(held.release)
        facts["a_exit"] = await asyncio.to_thread(a.proc.wait, 30)
        facts["a_log"] = a.log_lines()

        # -- rollout 2, no preStop: C ready, SIGTERM to B while it is still an endpoint; B leaves
        # the endpoints once its readiness says so. Requests keep reaching B while it drains.
        c = await _start(iris_bundle)
        servers.append(c)
        fleet.endpoints.append(c.base_url)
        await fleet.until(lambda: fleet.served_by(c.base_url) >= 50, "C to serve 50 requests")
        before = fleet.served_by(b.base_url)
        facts["b_sigterm_at"] = time.monotonic()
        b.proc.terminate()
        # The kubelet notices the failing readiness only at its next probe, and the endpoint removal
        # takes a moment to reach every node: 40 more requests go to B meanwhile.
        await fleet.until(lambda: fleet.served_by(b.base_url) >= before + 40, "40 requests routed to B")
        facts["b_readyz_when_removed"] = _status(b.url("/readyz"))
        fleet.endpoints.remove(b.base_url)
        facts["b_exit"] = await asyncio.to_thread(b.proc.wait, 30)
        facts["b_log"] = b.log_lines()
        served_c = fleet.served_by(c.base_url)
        await fleet.until(lambda: fleet.served_by(c.base_url) >= served_c + 100, "C to serve 100 more")
    finally:
        fleet.stop.set()
        await asyncio.gather(*workers)
        for srv in servers:
            await asyncio.to_thread(srv.__exit__)
    facts["urls"] = (a.base_url, b.base_url, c.base_url)
    facts["results"] = fleet.results
    return facts


def _accepted(log: object) -> set[str]:
    return {str(line["request_id"]) for line in log if line.get("msg") == "request"}  # type: ignore[attr-defined]


def test_rolling_restarts_under_load_lose_no_accepted_request(
    iris_bundle: Path, record_property: object
) -> None:
    facts = asyncio.run(_rollouts(iris_bundle))
    a_url, b_url, c_url = facts["urls"]  # type: ignore[misc]
    results: list[tuple[str, Result]] = facts["results"]  # type: ignore[assignment]
    by_url = Counter(u for u, _ in results)
    statuses = Counter(r.status for _, r in results)

    # Rollout 1 (preStop honoured): not one request failed, the drain kept the held request.
    assert facts["draining_readyz"]["status"] == "draining"  # type: ignore[index]
    assert facts["draining_healthz"] == 200
    status, body = facts["held"]  # type: ignore[misc]
    assert status == 200 and body["predictions"] == ["setosa"], body
    assert facts["a_exit"] == 0
    assert any("shutdown requested" in str(line.get("msg")) for line in facts["a_log"])  # type: ignore[union-attr]
    assert all(r.status == 200 for u, r in results if u == a_url), Counter(
        r.status for u, r in results if u == a_url
    )

    # Rollout 2 (no preStop): every request B accepted was answered 200; the rest never reached it.
    assert facts["b_exit"] == 0
    b_accepted = _accepted(facts["b_log"])
    failed_accepted = [r for u, r in results if u == b_url and r.status != 200 and r.request_id in b_accepted]
    assert failed_accepted == [], failed_accepted[:5]
    not_accepted = [
        r for u, r in results if u == b_url and r.status != 200 and r.request_id not in b_accepted
    ]
    assert all(r.status == 0 for r in not_accepted), (
        "a refusal must be a closed connection, not an error page"
    )
    assert facts["b_readyz_when_removed"] in (503, 0)  # draining, or already gone
    after_sigterm = Counter(r.status for u, r in results if u == b_url and r.started >= facts["b_sigterm_at"])

    # Every other request was answered 200, and each server took its share.
    assert all(r.status == 200 for u, r in results if u == c_url)
    assert min(by_url.values()) >= 50, by_url
    figures = {
        "requests": len(results),
        "by_server": {name: by_url[url] for name, url in zip("ABC", (a_url, b_url, c_url), strict=True)},
        "not_accepted_errors": dict(Counter(r.error.split(":")[0] for r in not_accepted)),
        "statuses": dict(statuses),
        "sent_to_B_after_SIGTERM": dict(after_sigterm),
        "failed_accepted": 0,
        "not_accepted_during_rollout_2": len(not_accepted),
    }
    print("rolling restarts:", json.dumps(figures))
    record_property("rolling_restarts", figures)  # type: ignore[operator]


def test_a_slow_model_load_stays_live_and_not_ready_until_done(iris_bundle: Path, tmp_path: Path) -> None:
    """model.skops is a FIFO (a model on a slow volume): the load cannot finish until the test has
    written every byte, so 'slow' is as long as the test likes, with no clock involved."""
    bundle = tmp_path / "slow-bundle"
    shutil.copytree(iris_bundle, bundle)
    artifact = (bundle / "model.skops").read_bytes()
    (bundle / "model.skops").unlink()
    os.mkfifo(bundle / "model.skops")
    writer_error: list[BaseException] = []

    with start_server(bundle, env=ENV, wait="live") as srv:
        for _ in range(20):
            assert http_get(srv.url("/healthz"))[0] == 200
            status, body = http_get(srv.url("/readyz"))
            assert status == 503 and json.loads(body)["status"] == "loading", body
        assert metric(srv, "model_server_model_ready") == 0
        status, body = _post(srv, ROW)
        assert status == 503 and "loading" in json.loads(body)["error"]

        fifo = open(bundle / "model.skops", "wb")
        fifo.write(artifact[: len(artifact) // 2])
        fifo.flush()
        for _ in range(20):  # half the model has arrived: still loading, still live
            assert http_get(srv.url("/healthz"))[0] == 200
            assert http_get(srv.url("/readyz"))[0] == 503

        def finish() -> None:
            try:
                fifo.write(artifact[len(artifact) // 2 :])
                fifo.close()
            except OSError as e:  # reported below
                writer_error.append(e)

        t = threading.Thread(target=finish)
        t.start()
        srv.wait_ready(60)
        t.join()
        assert not writer_error
        assert metric(srv, "model_server_model_ready") == 1
        status, body = _post(srv, ROW)
        assert status == 200 and json.loads(body)["predictions"] == ["setosa"]
        assert metric(srv, "model_server_model_load_duration_seconds") > 0


def test_a_failing_model_never_becomes_ready_and_the_process_stays_up(tmp_path: Path) -> None:
    """No bundle at all (a PVC that mounted empty): live, never ready, the reason in /readyz, and the
    process keeps answering until SIGTERM, when it exits 0 (no crash loop)."""
    empty = tmp_path / "empty-volume"
    empty.mkdir()
    with start_server(empty, env=ENV, wait="live") as srv:
        for _ in range(50):
            assert http_get(srv.url("/healthz"))[0] == 200
            status, body = http_get(srv.url("/readyz"))
            assert status == 503, body
        doc = json.loads(body)
        assert doc["status"] == "failed" and "metadata.json" in doc["reason"], doc
        assert srv.proc.poll() is None
        assert srv.stop() == 0


def _status(url: str) -> int:
    """The status of a GET, or 0 when nothing listens any more (the drain is over)."""
    try:
        return http_get(url)[0]
    except OSError:
        return 0


def _post(srv: ServerProcess, doc: object) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        srv.url("/predict"), json.dumps(doc).encode(), {"Content-Type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


pytestmark = pytest.mark.slow
