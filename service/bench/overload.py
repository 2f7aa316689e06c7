"""The overload curve for `make bench`: what the server does with 0.5x to 16x the load it sustains,
for 256-row requests and for single-row requests.

The server (iris demo bundle, batching on as the chart deploys it) is pinned to BENCH_SERVER_CPU and
the load generators to BENCH_LOAD_CPU, as in run.py. For each request size the sustainable rate is
measured first with wrk, closed loop: 256-row requests at 8 connections (each one fills a model call
on its own), single-row requests at MAX_IN_FLIGHT connections (the most the server takes at once,
where micro-batching serves the most); it is the rate of 200 answers. Each step then offers a multiple
of it open loop with vegeta (compiled, pinned in mk/tools.mk: a request is sent on schedule whatever
the server does, on up to VEGETA_CONNECTIONS connections) for OVERLOAD_SECONDS (default 5), and
records the accepted rate, 429s, 504s, p50/p99 of the accepted requests, the probes' answers (every
100 ms beside the step), the server's RSS after the step and its CPU time during it. The targets
(goodput, tail latency, fast refusals, probes, memory) are judged from these numbers and printed as a
table, with what a refusal and an answer cost the server in CPU (the reason goodput can or cannot
hold at a given multiple on one core).

    make bench-overload                 # or part of make bench
    OVERLOAD_SECONDS=10 OVERLOAD_FACTORS=1,4,16 OVERLOAD_ROWS=256 make bench-overload

Where vegeta cannot send as fast as asked, the `sent/s` column says so, and the goodput shown is
still what the server accepted. The JSON goes to build/bench/overload.json.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "service" / "soak"))
from loadgen import Client, Request, percentile  # noqa: E402
from overload import table  # noqa: E402
from procstat import sample  # noqa: E402

BUNDLE = ROOT / "build" / "bundles" / "iris-classifier"
SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "0")
LOAD_CPU = os.environ.get("BENCH_LOAD_CPU", "1")
SECONDS = float(os.environ.get("OVERLOAD_SECONDS", "5"))
FACTORS = [float(f) for f in os.environ.get("OVERLOAD_FACTORS", "0.5,1,2,4,8,16").split(",")]
ROW_SIZES = [int(r) for r in os.environ.get("OVERLOAD_ROWS", "256,1").split(",")]
MAX_IN_FLIGHT = 64  # the chart's default (settings.py), and the single-row calibration's concurrency
OUT = ROOT / "build" / "bench" / "overload.json"
WORK = ROOT / ".bench" / "overload"
VEGETA = ROOT / ".tools" / "bin" / "vegeta"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
# Open connections vegeta may use: far more than the server lets in (MAX_IN_FLIGHT), so a step is never
# limited by the client while the server answers refusals within milliseconds.
VEGETA_CONNECTIONS = 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def sustainable_rate(url: str, body: Path, connections: int, seconds: float) -> float:
    """200 answers per second from wrk, closed loop at ``connections`` (a refused request is answered
    at once and that connection sends the next, so this is what the server sustains)."""
    cmd = ["taskset", "-c", LOAD_CPU, WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    cmd += ["--timeout", "10s", "-s", str(HERE / "post.lua"), url]
    out = subprocess.run(
        cmd, env={**os.environ, "BENCH_BODY": str(body)}, capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"^BENCH_RESULT (.*)$", out, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    r = json.loads(match.group(1))
    errors = r["errors"]
    if errors["connect"] or errors["read"] or errors["write"] or errors["timeout"]:
        raise RuntimeError(f"calibration had transport errors: {errors}")
    accepted = r["requests"] - errors["status"]  # wrk counts any status >= 400 there: 429s here
    return float(accepted / (r["duration_us"] / 1e6))


def _probe(base: str, done: threading.Event, probes: Counter[int]) -> None:
    """The kubelet's probes (/healthz, /readyz) every 100 ms, on their own connection."""

    async def run() -> None:
        client = Client(base)
        while not done.is_set():
            for path in ("/healthz", "/readyz"):
                probes[(await client.send(Request("GET", path, headers=()))).status] += 1
            await asyncio.sleep(0.1)
        client.close()

    asyncio.run(run())


def step(base: str, pid: int, targets: Path, rate: float, seconds: float) -> dict[str, Any]:
    """One open-loop step with vegeta: what came back, per status, and what it cost the server."""
    results = WORK / "results.bin"
    probes: Counter[int] = Counter()
    done = threading.Event()
    prober = threading.Thread(target=_probe, args=(base, done, probes))
    prober.start()
    cpu = cpu_seconds(pid)
    attack = [
        "taskset", "-c", LOAD_CPU, str(VEGETA), "attack", f"-targets={targets}",
        f"-rate={max(1, round(rate))}/1s", f"-duration={seconds:g}s",
        f"-max-connections={VEGETA_CONNECTIONS}", "-timeout=30s", "-max-body=0", f"-output={results}",
    ]  # fmt: skip
    try:
        subprocess.run(attack, check=True, capture_output=True, timeout=seconds + 90)
    finally:
        cpu = cpu_seconds(pid) - cpu
        done.set()
        prober.join()
    encoded = subprocess.run(
        [str(VEGETA), "encode", "--to", "csv", str(results)], check=True, capture_output=True, text=True
    ).stdout
    statuses: Counter[int] = Counter()
    ok: list[float] = []
    first = last = None
    no_retry_after = 0
    for row in csv.reader(encoded.splitlines()):
        at, code, latency = int(row[0]), int(row[1]), int(row[2]) / 1e9
        first = at if first is None else min(first, at)
        last = at if last is None else max(last, at)
        statuses[code] += 1
        if code == 200:
            ok.append(latency)
        elif code == 429 and b"Retry-After" not in base64.b64decode(row[11]):
            no_retry_after += 1
    sent = sum(statuses.values())
    span = max(seconds, ((last or 0) - (first or 0)) / 1e9)
    return {
        "offered_per_s": round(rate, 1),
        "sent": sent,
        "not_sent": max(0, round(rate * seconds) - sent),
        "accepted_per_s": round(len(ok) / span, 1),
        "shed_429": statuses.get(429, 0),
        "late_504": statuses.get(504, 0),
        "other": {str(k): v for k, v in statuses.items() if k not in (200, 429, 503, 504)},
        "p50_ms": round(percentile(ok, 50) * 1000, 1),
        "p99_ms": round(percentile(ok, 99) * 1000, 1),
        "rss_mib": round(sample(pid).rss_mib, 1),
        "cpu_s": round(cpu, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "no_retry_after": no_retry_after,
        "probes": dict(probes),
    }


def costs(steps: list[dict[str, Any]]) -> dict[str, float] | None:
    """Server CPU per answered and per refused request, solved from two steps: the lowest load with
    the fewest refusals and the highest load (least squares would add nothing with two unknowns)."""
    lo = min(steps, key=lambda s: s["factor"])
    hi = max(steps, key=lambda s: s["factor"])
    a1, r1, c1 = lo["accepted_per_s"] * SECONDS, lo["shed_429"], lo["cpu_s"]
    a2, r2, c2 = hi["accepted_per_s"] * SECONDS, hi["shed_429"], hi["cpu_s"]
    det = a1 * r2 - a2 * r1
    if det == 0:
        return None
    answer = (c1 * r2 - c2 * r1) / det
    refusal = (a1 * c2 - a2 * c1) / det
    return {"answer_us": round(answer * 1e6, 1), "refusal_us": round(refusal * 1e6, 1)}


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
    bare = sum(s.get("no_retry_after", 0) for s in steps)
    add(
        "the rest refused with 429/503 (with Retry-After), nothing else",
        not refused and not bare,
        ("only 200, 429, 503, 504" if not refused else str(refused))
        + (f"; {bare} refusals without Retry-After" if bare else ""),
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
    if not VEGETA.exists():
        sys.exit(f"{VEGETA} is missing: run `make bench-overload` (it builds vegeta into .tools/)")
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    WORK.mkdir(parents=True, exist_ok=True)
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
            payload = WORK / f"body-{rows}.json"
            payload.write_bytes(body(rows))
            targets = WORK / f"targets-{rows}.txt"
            targets.write_text(f"POST {base}/predict\nContent-Type: application/json\n@{payload}\n")
            concurrency = 8 if rows > 1 else MAX_IN_FLIGHT
            sustainable_rate(base + "/predict", payload, concurrency, 1)  # warm-up
            sustainable = sustainable_rate(base + "/predict", payload, concurrency, max(SECONDS, 3))
            steps = []
            for f in FACTORS:
                steps.append(
                    step(base, server.pid, targets, sustainable * f, SECONDS)
                    | {"factor": f, "seconds": SECONDS}
                )
                time.sleep(1)  # let the server answer what the step left in flight
            curves.append(
                {
                    "rows": rows,
                    "sustainable_per_s": sustainable,
                    "calibration_connections": concurrency,
                    "steps": steps,
                    "cpu_costs": costs(steps),
                }
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    targets_out = []
    for c in curves:
        print(
            f"\n## Overload ({c['rows']}-row requests to /predict, batching on; "
            f"sustainable {c['sustainable_per_s']:.0f} req/s at {c['calibration_connections']} connections "
            f"(wrk), {SECONDS:g} s per step, open loop (vegeta))\n"
        )
        print(table(c["steps"]))
        cost = c["cpu_costs"]
        if cost:
            print(
                f"\nServer CPU per answered request {cost['answer_us']:.0f} us, per refusal "
                f"{cost['refusal_us']:.0f} us: at Nx the load, refusals take (N-1) x "
                f"{cost['refusal_us'] / max(cost['answer_us'], 1e-9):.3f} of the core's sustainable work."
            )
        targets_out += judge(c["rows"], c["sustainable_per_s"], c["steps"])
    print("\n| target | holds | measured |\n| --- | --- | --- |")
    for t in targets_out:
        print(f"| {t['target']} | {'yes' if t['holds'] else 'NO'} | {t['detail']} |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    OUT.write_text(
        json.dumps({"commit": commit, "seconds": SECONDS, "curves": curves, "targets": targets_out}, indent=2)
    )
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
