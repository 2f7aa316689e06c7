"""A small HTTP/1.1 load generator for the reliability checks: open loop at a fixed rate (overload,
soak) or closed loop at a fixed concurrency, over keep-alive connections, with no retries.

Why not wrk or httpx: wrk is closed-loop (a slow server slows the load down, so it can never offer
"several times the sustainable rate"), and httpx costs several times more CPU per request than this
raw asyncio client on a 2-core machine the server shares. Every request gets a result: the HTTP
status, or 0 with the transport error, plus its latency and the X-Request-ID it carried, so a test
can match what the client saw with what the server logged.

    results = asyncio.run(open_loop("http://127.0.0.1:8000", requests, rate=200, seconds=10))
    summary(results)   # counts by status, accepted rate, p50/p99 of the 200s
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    label: str = ""  # for the summary: which kind of request this was


@dataclass
class Result:
    label: str
    request_id: str
    status: int  # 0: no HTTP answer (connection refused, reset, closed); see error
    started: float  # time.monotonic() when the request was written
    latency: float  # seconds until the full answer (or the error)
    error: str = ""
    body: bytes = b""
    retry_after: str | None = None  # the Retry-After header, when the answer had one


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    not_sent: int = 0  # open loop: ticks with every connection busy (the client, not the server, was full)
    seconds: float = 0.0


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class Client:
    """Keep-alive connections to one server; ``send`` never retries."""

    def __init__(self, base_url: str, keep_body: bool = False) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.keep_body = keep_body
        self.idle: list[_Conn] = []
        self.open = 0

    async def send(self, req: Request, request_id: str | None = None) -> Result:
        rid = request_id or uuid.uuid4().hex
        start = time.monotonic()
        conn: _Conn | None = None
        try:
            conn = self._reusable() or await self._connect()
            head = [
                f"{req.method} {req.path} HTTP/1.1",
                f"Host: {self.host}:{self.port}",
                f"X-Request-ID: {rid}",
                f"Content-Length: {len(req.body)}",
            ]
            head += [f"{k}: {v}" for k, v in req.headers]
            conn.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + req.body)
            status, body, keep, retry_after = await _read_response(conn.reader)
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            if conn is not None:
                self._drop(conn)
            return Result(req.label, rid, 0, start, time.monotonic() - start, f"{type(e).__name__}: {e}")
        if keep:
            self.idle.append(conn)
        else:
            self._drop(conn)
        return Result(
            req.label,
            rid,
            status,
            start,
            time.monotonic() - start,
            body=body if self.keep_body or status >= 500 else b"",
            retry_after=retry_after,
        )

    def _reusable(self) -> _Conn | None:
        """The most recently used idle connection the server has not closed. A server closes idle
        keep-alive connections (uvicorn after 5 s); reusing one would fail a request that never
        reached it, which is the client's mistake, not the server's."""
        while self.idle:
            conn = self.idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            self._drop(conn)
        return None

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.open += 1
        return _Conn(reader, writer)

    def _drop(self, conn: _Conn) -> None:
        self.open -= 1
        conn.close()

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()
        self.open = 0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool, str | None]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    keep = True
    retry_after = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
        elif name == "retry-after":
            retry_after = value.strip()
        elif name == "transfer-encoding":
            raise ValueError("chunked answers are not expected from this server")
    body = await reader.readexactly(length) if length else b""
    return status, body, keep, retry_after


def cycle(requests: Iterable[Request]) -> Iterator[Request]:
    return itertools.cycle(list(requests))


async def open_loop(
    base_url: str,
    requests: Iterator[Request],
    rate: float,
    seconds: float,
    max_connections: int = 256,
    on_result: Callable[[Result], None] | None = None,
) -> Run:
    """Send at ``rate`` requests/s for ``seconds`` whatever the server does (open loop): a request
    waits for no earlier answer. At most ``max_connections`` are open; a tick that finds all of them
    busy is counted in ``not_sent`` (the client's limit, reported, never hidden)."""
    client = Client(base_url)
    run = Run()
    busy = 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(req: Request) -> None:
        nonlocal busy
        try:
            result = await client.send(req)
        finally:
            busy -= 1
        run.results.append(result)
        if on_result is not None:
            on_result(result)

    start = time.monotonic()
    total = math.floor(rate * seconds)
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if busy >= max_connections:
            run.not_sent += 1
            continue
        busy += 1
        task = asyncio.create_task(one(next(requests)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    run.seconds = time.monotonic() - start
    client.close()
    return run


async def closed_loop(
    base_url: str,
    requests: Iterator[Request],
    concurrency: int,
    count: int | None = None,
    seconds: float | None = None,
    stop: asyncio.Event | None = None,
) -> Run:
    """``concurrency`` workers, each sending its next request when the last one is answered, until
    ``count`` requests, ``seconds`` or ``stop`` is set."""
    client = Client(base_url)
    run = Run()
    sent = 0
    start = time.monotonic()

    def more() -> bool:
        if stop is not None and stop.is_set():
            return False
        if seconds is not None and time.monotonic() - start >= seconds:
            return False
        return count is None or sent < count

    async def worker() -> None:
        nonlocal sent
        while more():
            sent += 1
            run.results.append(await client.send(next(requests)))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.seconds = time.monotonic() - start
    client.close()
    return run


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def summary(run: Run) -> dict[str, Any]:
    """Counts by status (0 = transport error), accepted (200) rate and latency percentiles."""
    statuses = Counter(r.status for r in run.results)
    ok = [r.latency for r in run.results if r.status == 200]
    seconds = run.seconds or 1.0
    return {
        "sent": len(run.results),
        "not_sent": run.not_sent,
        "statuses": dict(sorted(statuses.items())),
        "accepted_per_s": round(len(ok) / seconds, 1),
        "p50_ms": round(percentile(ok, 50) * 1000, 1),
        "p99_ms": round(percentile(ok, 99) * 1000, 1),
        "errors": Counter(r.error.split(":")[0] for r in run.results if r.status == 0).most_common(3),
    }
