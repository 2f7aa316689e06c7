"""`make bench-workers`: one server process per pod, or two? Measured, not assumed.

Runs model-server's app as N uvicorn worker processes sharing one listening socket (what
`uvicorn --workers N` does) and loads it with wrk, for N = 1 and 2:
- on ONE core (a pod with a 1-CPU limit): does a second process add anything?
- on BOTH cores with wrk sharing them (a pod with 2 CPUs; this machine has no third core for the load
  generator, so read these as CPU cost per request rather than as a throughput ceiling).

Prints a table and writes build/bench/workers.json. The chart's default (one worker, scale with pods)
follows from it; see the README's performance section.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402

import models as bench_models  # noqa: E402

# One worker process: our app under plain uvicorn on an inherited socket (model-server serve's own
# process model is one such worker). socket(fileno=) keeps the inherited socket's real family: uvicorn's
# own fd= option assumes a UNIX socket, which leaves Nagle on for TCP and adds 40 ms delayed-ACK stalls.
CHILD = """
import socket, sys, uvicorn
from model_server import logs
from model_server.http.app import create_app
from model_server.settings import Settings
settings = Settings.from_env()
logs.configure(settings.log_level)
config = uvicorn.Config(create_app(settings), log_config=None, access_log=False, server_header=False)
uvicorn.Server(config).run(sockets=[socket.socket(fileno=int(sys.argv[1]))])
"""


class Workers:
    def __init__(self, n: int, cpus: str, bundle: Path, log: Path) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(2048)
        self.port = self.sock.getsockname()[1]
        fd = self.sock.fileno()
        os.set_inheritable(fd, True)
        env = {**os.environ, "MODEL_BUNDLE": str(bundle)}
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("wb")
        self.procs = [
            subprocess.Popen(
                ["taskset", "-c", cpus, sys.executable, "-c", CHILD, str(fd)],
                pass_fds=[fd],
                env=env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for _ in range(n)
        ]

    def wait_ready(self) -> None:
        # The kernel hands connections to whichever worker accepts: wait for a run of answers that
        # are all 200 (each is a new connection), after giving every process time to start.
        url = f"http://127.0.0.1:{self.port}/readyz"
        deadline = time.monotonic() + 120
        streak = 0
        while streak < 40:
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready: see {self._log.name}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    streak = streak + 1 if r.status == 200 else 0
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                streak = 0
                time.sleep(0.1)

    def cpu_seconds(self) -> float:
        ticks = 0
        for p in self.procs:
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        return ticks / run.CLOCK_TICKS

    def rss_mb(self) -> float:
        total = 0
        for p in self.procs:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.sock.close()
        self._log.close()


def main() -> int:
    model_keys = run.pick("BENCH_MODELS", ["linear", "iris-classifier"])
    models = bench_models.build(
        run.BENCH / "models", run.ROOT / "build" / "bundles" / "iris-classifier", model_keys
    )
    setups = [("1 core", "0", "1"), ("2 cores, shared with wrk", "0,1", "0,1")]
    results: list[dict[str, Any]] = []
    for m in models:
        for label, server_cpus, load_cpus in setups:
            for n in (1, 2):
                w = Workers(n, server_cpus, m.bundle, run.BENCH / "logs" / f"workers-{n}-{m.key}.log")
                try:
                    w.wait_ready()
                    url = f"http://127.0.0.1:{w.port}/v2/models/{m.key}/infer"
                    body = m.body("v2", 1)
                    run.LOAD_CPU = load_cpus
                    run.wrk(url, body, 64, run.WARMUP)
                    run.settle(url, body)
                    cpu = w.cpu_seconds()
                    r = run.wrk(url, body, 64, run.DURATION)
                    cpu = w.cpu_seconds() - cpu
                    seconds = r["duration_us"] / 1e6
                    row = {
                        "model": m.key,
                        "cpus": label,
                        "workers": n,
                        "rps": r["requests"] / seconds,
                        "p50_ms": r["latency_us"]["p50"] / 1000,
                        "p99_ms": r["latency_us"]["p99"] / 1000,
                        "errors": sum(r["errors"].values()),
                        "cpu_us_per_request": cpu / max(r["requests"], 1) * 1e6,
                        "rss_mb": w.rss_mb(),
                    }
                    results.append(row)
                    print(
                        f"  {m.key:<16} {label:<26} workers {n}: {row['rps']:7.0f} req/s  p50 "
                        f"{row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:7.2f} ms  errors {row['errors']}  "
                        f"cpu {row['cpu_us_per_request']:5.0f} us/req  rss {row['rss_mb']:4.0f} MB",
                        flush=True,
                    )
                finally:
                    w.stop()
    out = run.ROOT / "build" / "bench" / "workers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": run.meta(), "duration_s": run.DURATION, "results": results}, indent=1))
    print("\n| model | CPUs | workers | req/s | p50 ms | p99 ms | errors | CPU us/req | RSS MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['model']} | {r['cpus']} | {r['workers']} | {r['rps']:.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['errors']} | {r['cpu_us_per_request']:.0f} | {r['rss_mb']:.0f} |"
        )
    print(f"\nsaved {out.relative_to(run.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
