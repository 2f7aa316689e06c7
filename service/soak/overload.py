"""Overload, measured: the sustainable rate, and the table of an overload curve.

``capacity`` finds the sustainable rate with a closed loop (the accepted rate while the model is
kept busy), for tests/integration/reliability/test_overload.py, which then offers several times it
open loop and asserts counts and states. ``table`` prints the curve that service/bench/overload.py
measures (with vegeta) in `make bench`: per step the offered, sent and accepted rates, the shed (429)
and late (504) answers, latency percentiles of the accepted ones, the probes and resident memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from loadgen import Request, closed_loop


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
        "server CPU s",
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
                    r.get("cpu_s", ""),
                )
            )
        )
    return "\n".join(f"| {line} |" for line in lines)
