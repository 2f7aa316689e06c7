"""Overload, measured: offer several times what the server sustains and record what it does with it.

``capacity`` finds the sustainable rate with a closed loop (no request is ever refused at that
concurrency); ``curve`` then offers fixed multiples of it open loop and records, per step, the
accepted rate, the shed (429) and late (504) answers, latency percentiles of the accepted ones and the
server's resident memory after the step. Used by tests/integration/reliability/test_overload.py (which asserts
counts and states) and by service/bench/overload.py (which prints the curve in `make bench`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

from loadgen import Request, closed_loop, open_loop, summary
from procstat import sample


def capacity(base_url: str, requests: Iterator[Request], concurrency: int = 8, count: int = 200) -> float:
    """Accepted requests/s at a concurrency the server takes without shedding."""
    run = asyncio.run(closed_loop(base_url, requests, concurrency, count=count))
    refused = [r for r in run.results if r.status != 200]
    if refused:
        raise RuntimeError(f"calibration got {len(refused)} non-200 answers, e.g. {refused[0]}")
    return len(run.results) / run.seconds


def step(base_url: str, pid: int, requests: Iterator[Request], rate: float, seconds: float) -> dict[str, Any]:
    run = asyncio.run(open_loop(base_url, requests, rate, seconds))
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
    }


def curve(
    base_url: str,
    pid: int,
    requests: Iterator[Request],
    sustainable: float,
    factors: Sequence[float] = (0.5, 1, 2, 4, 8),
    seconds: float = 5.0,
) -> list[dict[str, Any]]:
    return [step(base_url, pid, requests, sustainable * f, seconds) | {"factor": f} for f in factors]


def table(rows: list[dict[str, Any]]) -> str:
    head = ("load", "offered/s", "accepted/s", "429", "504", "other", "p50 ms", "p99 ms", "RSS MiB")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        lines.append(
            " | ".join(
                str(x)
                for x in (
                    f"{r['factor']:g}x",
                    r["offered_per_s"],
                    r["accepted_per_s"],
                    r["shed_429"],
                    r["late_504"],
                    sum(r["other"].values()),
                    r["p50_ms"],
                    r["p99_ms"],
                    r["rss_mib"],
                )
            )
        )
    return "\n".join(f"| {line} |" for line in lines)
