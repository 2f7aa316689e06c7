"""The overload curve for `make bench`: what the server does with 0.5x to 16x the load it sustains,
for 256-row requests and for single-row requests.

The server (iris demo bundle, batching on as the chart deploys it) is pinned to BENCH_SERVER_CPU and
this load generator to BENCH_LOAD_CPU, as in run.py. For each request size the sustainable rate is
measured first, closed loop, with no request ever refused: 256-row requests at 8 connections (each
one fills a model call on its own), single-row requests at MAX_IN_FLIGHT connections (the most the
server takes at once, where micro-batching serves the most). Each step then offers a multiple of it
open loop for OVERLOAD_SECONDS (default 5) and records the accepted rate, 429s, 504s, p50/p99 of the
accepted requests, the probes' answers and the server's RSS after the step. The targets (goodput,
tail latency, fast refusals, probes, memory) are judged from these numbers and printed as a table.

    make bench-overload                 # or part of make bench
    OVERLOAD_SECONDS=10 OVERLOAD_FACTORS=1,4,16 OVERLOAD_ROWS=256 make bench-overload

The load generator is Python on one core: where it cannot send as fast as asked, the `sent/s`
column says so (its `not_sent` count is in the JSON), and the goodput it shows is still what the
server accepted. The JSON goes to build/bench/overload.json.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "service" / "soak"))
from loadgen import Request, cycle  # noqa: E402
from overload import capacity, curve, table  # noqa: E402

BUNDLE = ROOT / "build" / "bundles" / "iris-classifier"
SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "0")
LOAD_CPU = os.environ.get("BENCH_LOAD_CPU", "1")
SECONDS = float(os.environ.get("OVERLOAD_SECONDS", "5"))
FACTORS = [float(f) for f in os.environ.get("OVERLOAD_FACTORS", "0.5,1,2,4,8,16").split(",")]
ROW_SIZES = [int(r) for r in os.environ.get("OVERLOAD_ROWS", "256,1").split(",")]
MAX_IN_FLIGHT = 64  # the chart's default (settings.py), and the single-row calibration's concurrency
OUT = ROOT / "build" / "bench" / "overload.json"
# The targets: at 2x, 4x and 8x the accepted rate stays >= 90 % of the sustainable rate, and the
# accepted requests' p99 within 3x of their p99 at 1x.
GOODPUT = 0.9
TAIL = 3.0
JUDGED = (2.0, 4.0, 8.0)
RSS_FLAT_MIB = 32  # allocator noise is a few MiB; a queue of 21 KB bodies would add far more


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(1200):
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - our own loopback URL
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    sys.exit("the server did not become ready")


def body(rows: int) -> bytes:
    records = [
        {
            "sepal_length": 4.5 + (i % 30) / 10,
            "sepal_width": 3.0,
            "petal_length": 1.0 + (i % 50) / 10,
            "petal_width": 0.2 + (i % 20) / 10,
        }
        for i in range(rows)
    ]
    return json.dumps({"instances": records} if rows > 1 else records[0]).encode()


def judge(rows: int, sustainable: float, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The overload targets for one request size, from this run's numbers."""
    by = {s["factor"]: s for s in steps}
    out = []

    def add(name: str, ok: bool, detail: str) -> None:
        out.append({"target": f"overload, {rows}-row requests: {name}", "holds": ok, "detail": detail})

    base = by.get(1.0)
    for f in JUDGED:
        s = by.get(f)
        if s is None:
            continue
        share = s["accepted_per_s"] / sustainable
        add(
            f"{f:g}x accepted >= {GOODPUT:.0%} of sustainable",
            share >= GOODPUT,
            f"{s['accepted_per_s']:.0f}/s of {sustainable:.0f}/s = {share:.0%}"
            + (
                f" (the client sent {s['sent'] / SECONDS:.0f}/s of {s['offered_per_s']:.0f}/s)"
                if s["not_sent"]
                else ""
            ),
        )
        if base is not None:
            add(
                f"{f:g}x accepted p99 <= {TAIL:g}x the 1x p99",
                s["p99_ms"] <= TAIL * base["p99_ms"],
                f"{s['p99_ms']:.0f} ms vs {base['p99_ms']:.0f} ms at 1x",
            )
    refused = {k: v for s in steps for k, v in s["other"].items()}
    add(
        "the rest refused with 429/503, nothing else",
        not refused,
        "only 200, 429, 503" if not refused else str(refused),
    )
    probes = {k: v for s in steps for k, v in s["probes"].items()}
    add("health and readiness answer 200 throughout", set(probes) <= {200}, str(probes))
    rss = [s["rss_mib"] for s in steps]
    add(
        f"RSS flat (within {RSS_FLAT_MIB} MiB)",
        max(rss) - min(rss) <= RSS_FLAT_MIB,
        f"{min(rss):.0f}-{max(rss):.0f} MiB",
    )
    return out


def main() -> int:
    if not (BUNDLE / "metadata.json").exists():
        sys.exit(f"{BUNDLE} is missing: run `make demo`")
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "GRPC_ENABLED": "false",
        "BATCHING": "on",
        "LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, str(ROOT / ".venv" / "bin" / "model-server"), "serve", str(BUNDLE)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    curves: list[dict[str, Any]] = []
    try:
        _wait_ready(base + "/readyz", server)
        for rows in ROW_SIZES:
            requests = cycle([Request("POST", "/predict", body(rows))])
            concurrency = 8 if rows > 1 else MAX_IN_FLIGHT
            sustainable = capacity(base, requests, concurrency=concurrency, count=300 if rows > 1 else 3000)
            steps = curve(base, server.pid, requests, sustainable, FACTORS, SECONDS)
            curves.append(
                {
                    "rows": rows,
                    "sustainable_per_s": sustainable,
                    "calibration_connections": concurrency,
                    "steps": steps,
                }
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    targets = []
    for c in curves:
        print(
            f"\n## Overload ({c['rows']}-row requests to /predict, batching on; "
            f"sustainable {c['sustainable_per_s']:.0f} req/s at {c['calibration_connections']} connections, "
            f"{SECONDS:g} s per step, open loop)\n"
        )
        print(table(c["steps"]))
        targets += judge(c["rows"], c["sustainable_per_s"], c["steps"])
    print("\n| target | holds | measured |\n| --- | --- | --- |")
    for t in targets:
        print(f"| {t['target']} | {'yes' if t['holds'] else 'NO'} | {t['detail']} |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    OUT.write_text(
        json.dumps({"commit": commit, "seconds": SECONDS, "curves": curves, "targets": targets}, indent=2)
    )
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
