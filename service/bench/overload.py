"""The overload curve for `make bench` (reliability, issue 6): what the server does with 0.5x to 8x
the load it sustains.

The server (iris demo bundle, batching on as the chart deploys it) is pinned to BENCH_SERVER_CPU and
this load generator to BENCH_LOAD_CPU, as in run.py. The sustainable rate is measured first (closed
loop, 8 connections, 256-row requests: heavy enough that a Python client can offer 8 times it);
then each step offers a multiple of it open loop for OVERLOAD_SECONDS (default 5) and records the
accepted rate, 429s, 504s, p50/p99 of the accepted requests and the server's RSS after the step.

    make bench-overload                 # or part of make bench
    OVERLOAD_SECONDS=10 OVERLOAD_FACTORS=1,4,16 make bench-overload

Numbers are for comparing steps within one run, not across machines. The JSON goes to
build/bench/overload.json.
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "service" / "soak"))
from loadgen import Request, cycle  # noqa: E402
from overload import capacity, curve, table  # noqa: E402

BUNDLE = ROOT / "build" / "bundles" / "iris-classifier"
SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "0")
LOAD_CPU = os.environ.get("BENCH_LOAD_CPU", "1")
SECONDS = float(os.environ.get("OVERLOAD_SECONDS", "5"))
FACTORS = [float(f) for f in os.environ.get("OVERLOAD_FACTORS", "0.5,1,2,4,8").split(",")]
ROWS = 256
OUT = ROOT / "build" / "bench" / "overload.json"


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
    try:
        _wait_ready(base + "/readyz", server)
        rows = [
            {
                "sepal_length": 4.5 + (i % 30) / 10,
                "sepal_width": 3.0,
                "petal_length": 1.0 + (i % 50) / 10,
                "petal_width": 0.2 + (i % 20) / 10,
            }
            for i in range(ROWS)
        ]
        heavy = cycle([Request("POST", "/predict", json.dumps({"instances": rows}).encode())])
        sustainable = capacity(base, heavy, concurrency=8, count=300)
        steps = curve(base, server.pid, heavy, sustainable, FACTORS, SECONDS)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    print(
        f"\n## Overload ({ROWS}-row requests to /predict, batching on; sustainable {sustainable:.0f} req/s, "
        f"{SECONDS:g} s per step, open loop)\n"
    )
    print(table(steps))
    print(
        "\naccepted/s should level off at the sustainable rate, 429 take the rest, p99 stay bounded "
        "(MAX_IN_FLIGHT requests ahead at most) and RSS stay flat."
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"sustainable_per_s": sustainable, "rows": ROWS, "steps": steps}, indent=2))
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
