"""Overload, measured: offer several times what the server sustains and record what it does with it.

``capacity`` finds the sustainable rate with a closed loop (the accepted rate while the model is
kept busy); ``curve`` then offers fixed multiples of it open loop and records, per step, the
accepted rate, the shed (429) and late (504) answers, latency percentiles of the accepted ones and the
server's resident memory after the step. Used by tests/integration/reliability/test_overload.py (which asserts
counts and states) and by service/bench/overload.py (which prints the curve in `make bench`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from loadgen import Client, Request, Run, closed_loop, open_loop, summary
from procstat import sample


def capacity(base_url: str, requests: Iterator[Request], concurrency: int = 8, count: int = 200) -> float:
    """Accepted requests/s with the model kept busy: a closed loop at ``concurrency``. A request the
    server refuses (429: it would wait longer than MAX_QUEUE_WAIT_MS) is answered at once and the
    connection sends the next, so the accepted rate is what the server sustains; anything but 200
    and 429 is an error."""
    run = asyncio.run(closed_loop(base_url, requests, concurrency, count=count))
    wrong = [r for r in run.results if r.status not in (200, 429)]
    accepted = sum(r.status == 200 for r in run.results)
    if wrong or not accepted:
        raise RuntimeError(f"calibration got {len(wrong)} answers other than 200/429, e.g. {wrong[:1]}")
    return accepted / run.seconds


async def _with_probes(
    base_url: str, requests: Iterator[Request], rate: float, seconds: float
) -> tuple[Run, Counter[int]]:
    """The open-loop step, with the kubelet's probes (/healthz, /readyz) every 100 ms beside it."""
    probes: Counter[int] = Counter()
    done = asyncio.Event()

    async def probe() -> None:
        client = Client(base_url)
        while not done.is_set():
            for path in ("/healthz", "/readyz"):
                probes[(await client.send(Request("GET", path, headers=()))).status] += 1
            await asyncio.sleep(0.1)
        client.close()

    prober = asyncio.create_task(probe())
    try:
        run = await open_loop(base_url, requests, rate, seconds)
    finally:
        done.set()
        await prober
    return run, probes


def step(base_url: str, pid: int, requests: Iterator[Request], rate: float, seconds: float) -> dict[str, Any]:
    run, probes = asyncio.run(_with_probes(base_url, requests, rate, seconds))
    s = summary(run)
    statuses = s["statuses"]
    return {
        "offered_per_s": round(rate, 1),
        "sent": s["sent"],
        "not_sent": s["not_sent"],
        "accepted_per_s": s["accepted_per_s"],
        "shed_429": statuses.get(429, 0),
        "late_504": statuses.get(504, 0),
        "other": {k: v for k, v in statuses.items() if k not in (200, 429, 504)},
        "p50_ms": s["p50_ms"],
        "p99_ms": s["p99_ms"],
        "rss_mib": round(sample(pid).rss_mib, 1),
        "statuses": statuses,
        "probes": dict(probes),
    }


def curve(
    base_url: str,
    pid: int,
    requests: Iterator[Request],
    sustainable: float,
    factors: Sequence[float] = (0.5, 1, 2, 4, 8, 16),
    seconds: float = 5.0,
) -> list[dict[str, Any]]:
    return [
        step(base_url, pid, requests, sustainable * f, seconds) | {"factor": f, "seconds": seconds}
        for f in factors
    ]


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "load",
        "offered/s",
        "sent/s",
        "accepted/s",
        "429",
        "504",
        "other",
        "p50 ms",
        "p99 ms",
        "probes",
        "RSS MiB",
    )
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        lines.append(
            " | ".join(
                str(x)
                for x in (
                    f"{r['factor']:g}x",
                    r["offered_per_s"],
                    round(r["sent"] / r["seconds"], 1) if r.get("seconds") else "",
                    r["accepted_per_s"],
                    r["shed_429"],
                    r["late_504"],
                    sum(r["other"].values()),
                    r["p50_ms"],
                    r["p99_ms"],
                    "ok" if set(r.get("probes", {})) <= {200} else r.get("probes"),
                    r["rss_mib"],
                )
            )
        )
    return "\n".join(f"| {line} |" for line in lines)
