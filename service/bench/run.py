"""`make bench`: every contender side by side in one run, on loopback.

The server under test is pinned to one core (BENCH_SERVER_CPU, default 0) and the load generator to
the other (BENCH_LOAD_CPU, default 1): wrk for HTTP, ghz for gRPC. Ratios between contenders measured
in the same run are what count; absolute numbers move with whatever else the machine is doing.

Environment knobs (all optional):
  BENCH_DURATION   seconds of measured load per cell (default 5; 1 s of warm-up precedes each)
  BENCH_WARMUP     seconds of warm-up per cell (default 1)
  BENCH_MODELS     comma-separated subset of: iris-classifier, linear, boosting
  BENCH_CONTENDERS comma-separated subset of the contender keys below
  BENCH_LOADS      comma-separated subset of: c1, c8, c64, b32
  BENCH_OUT        where the JSON goes (default build/bench/latest.json)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from summary import cell as find_cell  # noqa: E402

import models as bench_models  # noqa: E402

BENCH = ROOT / ".bench"
VENV_BIN = Path(sys.executable).parent
MLSERVER = BENCH / "mlserver-venv" / "bin" / "mlserver"
# The image's environment (runtime lock only, package installed): cold start is measured there.
RUNTIME_BIN = BENCH / "runtime-venv" / "bin"


def image_python_env(dockerfile: Path = ROOT / "service" / "Dockerfile") -> dict[str, str]:
    """The interpreter settings (PYTHON*) that the image's final stage gives the server, read from the
    Dockerfile itself so that the bench cannot drift from it."""
    text = dockerfile.read_text().replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[1]
    pairs = [w for line in final.splitlines() if line.startswith("ENV ") for w in shlex.split(line[4:])]
    return {k: v for k, _, v in (w.partition("=") for w in pairs) if k.startswith("PYTHON")}


IMAGE_PYTHON_ENV = image_python_env()
WRK = shutil.which("wrk") or "/usr/bin/wrk"
SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "0")
LOAD_CPU = os.environ.get("BENCH_LOAD_CPU", "1")
DURATION = float(os.environ.get("BENCH_DURATION", "5"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "1"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STARTED_AT = time.time()


@dataclass(frozen=True)
class Load:
    key: str
    title: str
    connections: int
    rows: int


LOADS = [
    Load("c1", "1 conn, 1 row", 1, 1),
    Load("c8", "8 conn, 1 row", 8, 1),
    Load("c64", "64 conn, 1 row", 64, 1),
    Load("b32", "8 conn, 32 rows", 8, 32),
]


@dataclass
class Contender:
    key: str
    title: str
    peer: bool  # a peer we compare against (MLServer, tutorial), not us and not the ceiling
    per_model: bool  # False: model-independent (the ceiling runs once)
    # (model, HTTP port, gRPC port, work dir) -> (command, environment)
    start: Callable[[bench_models.BenchModel, int, int, Path], tuple[list[str], dict[str, str]]]
    ready_path: Callable[[bench_models.BenchModel], str]
    request: Callable[[bench_models.BenchModel, int], tuple[str, Path]]  # (path, body file)
    env: dict[str, str] = field(default_factory=dict)
    grpc: bool = False  # loaded over gRPC (ghz, ModelInfer on the gRPC port) instead of HTTP (wrk)


def _ours(extra: dict[str, str], grpc: bool = False) -> Contender:
    def start(
        m: bench_models.BenchModel, port: int, grpc_port: int, work: Path
    ) -> tuple[list[str], dict[str, str]]:
        env = {"PORT": str(port), "GRPC_PORT": str(grpc_port), "HOST": "127.0.0.1", **extra}
        return [str(VENV_BIN / "model-server"), "serve", str(m.bundle)], env

    return Contender(
        "",
        "",
        False,
        True,
        start,
        lambda m: "/readyz",
        lambda m, rows: (f"/v2/models/{m.key}/infer", m.body("v2", rows)),
        grpc=grpc,
    )


def _mlserver(batching: bool, grpc: bool = False) -> Contender:
    def start(
        m: bench_models.BenchModel, port: int, grpc_port: int, work: Path
    ) -> tuple[list[str], dict[str, str]]:
        shutil.rmtree(work, ignore_errors=True)
        (work / m.key).mkdir(parents=True)
        # debug=false turns MLServer's per-request access log off: its production setting.
        settings = {"http_port": port, "grpc_port": grpc_port, "metrics_port": free_port(), "debug": False}
        (work / "settings.json").write_text(json.dumps(settings))
        model: dict[str, Any] = {
            "name": m.key,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": str(m.directory / "mlserver" / "model.joblib")},
        }
        if batching:
            model.update(MLSERVER_BATCHING)
        (work / m.key / "model-settings.json").write_text(json.dumps(model))
        return [str(MLSERVER), "start", str(work)], {}

    return Contender(
        "",
        "",
        True,
        True,
        start,
        lambda m: f"/v2/models/{m.key}/ready",
        lambda m, rows: (f"/v2/models/{m.key}/infer", m.body("v2", rows)),
        grpc=grpc,
    )


# MLServer's adaptive batching: the best of the settings tried on the forest at 64 connections (see README).
MLSERVER_BATCHING = {"max_batch_size": 64, "max_batch_time": 0.005}


def _tutorial() -> Contender:
    def start(
        m: bench_models.BenchModel, port: int, grpc_port: int, work: Path
    ) -> tuple[list[str], dict[str, str]]:
        return [
            sys.executable,
            str(HERE / "tutorial_app.py"),
            "--port",
            str(port),
            "--model-dir",
            str(m.directory),
        ], {}

    return Contender(
        "",
        "",
        True,
        True,
        start,
        lambda m: "/readyz",
        lambda m, rows: (
            "/predict" if rows == 1 else "/predict_batch",
            m.body("named" if rows == 1 else "list", rows),
        ),
    )


def _ceiling() -> Contender:
    def start(
        m: bench_models.BenchModel, port: int, grpc_port: int, work: Path
    ) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, str(HERE / "ceiling_app.py"), "--port", str(port)], {}

    return Contender(
        "",
        "",
        False,
        False,
        start,
        lambda m: "/readyz",
        lambda m, rows: (f"/v2/models/{m.key}/infer", m.body("v2", rows)),
    )


def _grpc_ceiling() -> Contender:
    def start(
        m: bench_models.BenchModel, port: int, grpc_port: int, work: Path
    ) -> tuple[list[str], dict[str, str]]:
        script = str(HERE / "grpc_ceiling_app.py")
        return [sys.executable, script, "--port", str(port), "--grpc-port", str(grpc_port)], {}

    return Contender(
        "",
        "",
        False,
        False,
        start,
        lambda m: "/readyz",
        lambda m, rows: (f"/v2/models/{m.key}/infer", m.body("v2", rows)),
        grpc=True,
    )


def _named(key: str, title: str, c: Contender) -> Contender:
    c.key, c.title = key, title
    return c


CONTENDERS = [
    _named("ours", "model-server (batching on)", _ours({"BATCHING": "on"})),
    _named("ours-nobatch", "model-server (batching off)", _ours({"BATCHING": "off"})),
    _named(
        "ours-nodrift",
        "model-server (batching on, drift off)",
        _ours({"BATCHING": "on", "DRIFT_WINDOW_ROWS": "0"}),
    ),
    _named("ceiling", "constant answer, same stack (ceiling)", _ceiling()),
    _named("mlserver", "MLServer 1.7.1", _mlserver(False)),
    _named("mlserver-batch", "MLServer 1.7.1, adaptive batching", _mlserver(True)),
    _named("tutorial", "FastAPI tutorial server", _tutorial()),
    # The Open Inference Protocol over gRPC: ModelInfer with the same 2-D FP64 tensor (typed contents).
    _named("ours-grpc", "model-server over gRPC (batching on)", _ours({"BATCHING": "on"}, grpc=True)),
    _named("mlserver-grpc", "MLServer 1.7.1 over gRPC", _mlserver(False, grpc=True)),
    _named("mlserver-batch-grpc", "MLServer 1.7.1 over gRPC, adaptive batching", _mlserver(True, grpc=True)),
    _named("grpc-ceiling", "constant answer, grpc.aio (gRPC ceiling)", _grpc_ceiling()),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pick(env: str, options: list[str]) -> list[str]:
    wanted = [w.strip() for w in os.environ.get(env, "").split(",") if w.strip()]
    unknown = set(wanted) - set(options)
    if unknown:
        sys.exit(f"{env}: unknown {sorted(unknown)}; choose from {options}")
    return wanted or options


# -- processes -------------------------------------------------------------------------------------


class Server:
    """One contender's process (and its children), pinned to the server core, in its own process group."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self._log = log.open("wb")
        full_env = {**os.environ, **env}
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *cmd],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, url: str, timeout: float = 120) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - our own http:// URL
                    if r.status == 200:
                        return time.monotonic() - start
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"not ready after {timeout}s; see {self.log}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process tree so far: CPU per request is robust to the other
        work on the machine, which steals wall time but not CPU time."""
        ticks = 0
        for pid in _tree(self.proc.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        return ticks / CLOCK_TICKS

    def rss_mb(self) -> float:
        """Resident memory of the process tree (MLServer runs its model in a child process)."""
        pids = _tree(self.proc.pid)
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        pid = int(stat.parent.name)
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def post(url: str, body: Path) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(url, data=body.read_bytes(), headers=headers)  # noqa: S310 - http://127.0.0.1
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def settle(url: str, body: Path, timeout: float = 30) -> None:
    """Wait until the contender has answered what wrk left in flight when it stopped.

    wrk closes its connections mid-request; a server keeps working on those requests (nothing tells
    it the client left), so the next cell would start against a queue still full of them and count
    its own overload answers. One request answered 200 after them (queues are FIFO) means they are done.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if post(url, body)[0] == 200:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s after a load")


def wrk(url: str, body: Path, connections: int, seconds: float) -> dict[str, Any]:
    cmd = [
        "taskset",
        "-c",
        LOAD_CPU,
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{max(seconds, 1):g}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "post.lua"),
        url,
    ]
    out = subprocess.run(
        cmd,
        env={**os.environ, "BENCH_BODY": str(body)},
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    match = re.search(r"^BENCH_RESULT (.*)$", out, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    return dict(json.loads(match.group(1)))


GHZ = ROOT / ".tools" / "bin" / "ghz"
PROTO = ROOT / "service" / "model_server" / "protocols" / "proto" / "grpc_predict_v2.proto"
INFER_METHOD = "inference.GRPCInferenceService.ModelInfer"


def grpc_body(m: bench_models.BenchModel, rows: int) -> Path:
    """The V2 body as a serialized ModelInferRequest (same tensor, typed fp64_contents), made once."""
    out = m.body("v2", rows).with_name(f"grpc-{rows}.bin")
    if not out.exists():
        from model_server.protocols.proto import grpc_predict_v2_pb2 as pb

        doc = json.loads(m.body("v2", rows).read_text())
        msg = pb.ModelInferRequest(model_name=m.key)
        for spec in doc["inputs"]:
            tensor = msg.inputs.add(name=spec["name"], datatype=spec["datatype"], shape=spec["shape"])
            tensor.contents.fp64_contents.extend(spec["data"])
        out.write_bytes(msg.SerializeToString())
    return out


def grpc_call(target: str, body: Path, timeout: float = 30) -> tuple[str, str]:
    """(status name, details) of one ModelInfer with ``body``."""
    import grpc

    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        stub = channel.unary_unary("/" + INFER_METHOD.replace(".ModelInfer", "/ModelInfer"))
        try:
            stub(body.read_bytes(), timeout=timeout)
        except grpc.RpcError as e:
            return e.code().name, e.details() or ""
    return "OK", ""


def grpc_settle(target: str, body: Path, timeout: float = 30) -> None:
    """As settle(), over gRPC."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if grpc_call(target, body)[0] == "OK":
            return
        time.sleep(0.05)
    raise RuntimeError(f"{target} did not answer OK within {timeout}s after a load")


def ghz(target: str, body: Path, connections: int, seconds: float) -> dict[str, Any]:
    """ghz, closed loop like wrk: `connections` HTTP/2 connections with one worker each, for `seconds`;
    the result in wrk's shape (requests, duration, latency percentiles, errors by kind)."""
    cmd = [
        "taskset",
        "-c",
        LOAD_CPU,
        str(GHZ),
        "--insecure",
        "--proto",
        str(PROTO),
        "--call",
        INFER_METHOD,
        "--binary-file",
        str(body),
        "--connections",
        str(connections),
        "--concurrency",
        str(connections),
        "--cpus",
        "1",
        "--duration",
        f"{max(seconds, 1):g}s",
        "--timeout",
        "10s",
        "--format",
        "json",
        target,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        raise RuntimeError(
            f"ghz printed no result (exit {out.returncode}):\n{out.stdout}\n{out.stderr}"
        ) from None
    latency = {int(d["percentage"]): d["latency"] for d in doc.get("latencyDistribution") or []}
    codes = dict(doc.get("statusCodeDistribution") or {})
    errors = {code: n for code, n in codes.items() if code != "OK"}
    # When the duration ends ghz closes its connections with a call in flight on each (as wrk does);
    # those calls end "Unavailable: transport is closing" and are not the server's errors.
    closing = sum(n for e, n in (doc.get("errorDistribution") or {}).items() if "transport is closing" in e)
    if closing and errors.get("Unavailable", 0) >= closing:
        errors["Unavailable"] -= closing
        errors = {code: n for code, n in errors.items() if n}
    return {
        "requests": int(codes.get("OK", 0)),
        "duration_us": doc["total"] / 1000,
        "latency_us": {
            "p50": latency.get(50, 0) / 1000,
            "p99": latency.get(99, 0) / 1000,
            "max": doc.get("slowest", 0) / 1000,
        },
        "errors": errors,
    }


# -- the run -------------------------------------------------------------------------------------


def measure_floor(m: bench_models.BenchModel) -> dict[str, float]:
    out = subprocess.run(
        ["taskset", "-c", SERVER_CPU, sys.executable, str(HERE / "floor.py"), str(m.directory)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out))


def cold_start(bundle: Path, logs: Path, times: int = 5) -> dict[str, Any]:
    """Seconds from exec of `model-server serve` to /readyz 200 (import, load, warm-up), pinned to the
    server core like the rest, in the image's environment (.bench/runtime-venv); the median of a few
    starts, and the load step the server itself logs."""
    totals, loads, idle = [], [], []
    for i in range(times):
        port = free_port()
        server = Server(
            [str(RUNTIME_BIN / "model-server"), "serve", str(bundle)],
            {"PORT": str(port), "GRPC_PORT": str(free_port()), "HOST": "127.0.0.1", **IMAGE_PYTHON_ENV},
            logs / f"cold-start-{i}.log",
        )
        try:
            totals.append(server.wait_ready(f"http://127.0.0.1:{port}/readyz"))
            time.sleep(1)  # idle: what a pod holds between requests once ready
            idle.append(server.rss_mb())
        finally:
            server.stop()
        for line in server.log.read_text().splitlines():
            if '"model ready"' in line:
                loads.append(json.loads(line).get("load_seconds"))
    totals.sort()
    idle.sort()
    return {
        "ready_s": round(totals[len(totals) // 2], 2),
        "all_s": [round(t, 2) for t in totals],
        "load_s": loads,
        "idle_rss_mib": round(idle[len(idle) // 2], 1),
    }


def run_contender(
    c: Contender, m: bench_models.BenchModel, loads: list[Load], logs: Path, results: list[dict[str, Any]]
) -> None:
    port, grpc_port = free_port(), free_port()
    cmd, env = c.start(m, port, grpc_port, BENCH / "work" / f"{c.key}-{m.key}")
    base = f"http://127.0.0.1:{port}"
    target = f"127.0.0.1:{grpc_port}"
    server = Server(cmd, env, logs / f"{c.key}-{m.key}.log")
    label = f"{c.key:<15} {m.key:<16}"
    try:
        startup = server.wait_ready(base + c.ready_path(m))
        for load in loads:
            path, body = c.request(m, load.rows)
            if c.grpc:
                body = grpc_body(m, load.rows)
                code, details = grpc_call(target, body)
                if code != "OK":
                    raise RuntimeError(f"{c.key} answered {code} to ModelInfer: {details[:300]!r}")

                def load_for(seconds: float, body: Path = body, load: Load = load) -> dict[str, Any]:
                    return ghz(target, body, load.connections, seconds)

                def wait_settled(body: Path = body) -> None:
                    grpc_settle(target, body)
            else:
                status, answer = post(base + path, body)
                if status != 200:
                    raise RuntimeError(f"{c.key} answered {status} to {path}: {answer[:300]!r}")

                def load_for(
                    seconds: float, body: Path = body, load: Load = load, path: str = path
                ) -> dict[str, Any]:
                    return wrk(base + path, body, load.connections, seconds)

                def wait_settled(body: Path = body, path: str = path) -> None:
                    settle(base + path, body)

            if WARMUP > 0:
                load_for(WARMUP)
                wait_settled()
            cpu = server.cpu_seconds()
            r = load_for(DURATION)
            cpu = server.cpu_seconds() - cpu
            wait_settled()
            seconds = r["duration_us"] / 1e6
            errors = sum(r["errors"].values())
            row = {
                "model": m.key,
                "contender": c.key,
                "load": load.key,
                "connections": load.connections,
                "rows_per_request": load.rows,
                "requests": r["requests"],
                "rps": r["requests"] / seconds,
                "rows_per_s": r["requests"] * load.rows / seconds,
                "p50_ms": r["latency_us"]["p50"] / 1000,
                "p99_ms": r["latency_us"]["p99"] / 1000,
                "max_ms": r["latency_us"]["max"] / 1000,
                "errors": errors,
                "error_kinds": r["errors"],
                "rss_mb": round(server.rss_mb(), 1),
                "startup_s": round(startup, 2),
                "cpu_us_per_request": round(cpu / max(r["requests"], 1) * 1e6, 1),
            }
            if c.key == "ours" and load.key == "c1":
                # The 1-connection target compares p50 with in-process predict time, and on a shared
                # machine the model itself runs 30-40 % slower from one minute to the next: measure
                # the floor again right after this cell, so both sides see the same machine.
                f = measure_floor(m)
                row["floor_adjacent_ms"] = round(min(f["array_1"], f["frame_1"]) * 1000, 3)
            results.append(row)
            print(
                f"  {label} {load.key:<4} {row['rps']:>9.0f} req/s  p50 {row['p50_ms']:>7.2f} ms"
                f"  p99 {row['p99_ms']:>8.2f} ms  errors {errors:<5} rss {row['rss_mb']:>6.0f} MB"
                f"  cpu {row['cpu_us_per_request']:>7.0f} us/req",
                flush=True,
            )
    except Exception as exc:  # noqa: BLE001 - one broken contender must not lose the rest of the run
        print(f"  {label} FAILED: {exc}", flush=True)
        results.append({"model": m.key, "contender": c.key, "failed": str(exc)})
    finally:
        server.stop()


def main() -> int:
    model_keys = pick("BENCH_MODELS", list(bench_models.MODELS))
    contender_keys = pick("BENCH_CONTENDERS", [c.key for c in CONTENDERS])
    load_keys = pick("BENCH_LOADS", [ld.key for ld in LOADS])
    contenders = [c for c in CONTENDERS if c.key in contender_keys]
    loads = [ld for ld in LOADS if ld.key in load_keys]
    if any(c.key.startswith("mlserver") for c in contenders) and not MLSERVER.exists():
        sys.exit(f"{MLSERVER} is missing: run `make bench` (it installs MLServer into .bench/)")
    if any(c.grpc for c in contenders) and not GHZ.exists():
        sys.exit(f"{GHZ} is missing: run `make bench` (it builds ghz into .tools/)")
    started = time.monotonic()
    print(f"building models {model_keys} into .bench/models", flush=True)
    models = bench_models.build(BENCH / "models", ROOT / "build" / "bundles" / "iris-classifier", model_keys)
    logs = BENCH / "logs"
    floors = {}
    for m in models:
        floors[m.key] = measure_floor(m)
        f = floors[m.key]
        print(
            f"  floor {m.key:<16} predict 1 row: {f['array_1'] * 1e3:.3f} ms (array), "
            f"{f['frame_1'] * 1e3:.3f} ms (DataFrame); 32 rows: {f['array_32'] * 1e3:.3f} ms",
            flush=True,
        )
    start = cold_start(ROOT / "build" / "bundles" / "iris-classifier", logs)
    print(
        f"  cold start (demo bundle, import + load + warm-up to ready): {start['ready_s']:.2f} s "
        f"(runs {start['all_s']}, model load {start['load_s']} s); idle RSS {start['idle_rss_mib']:.0f} MiB",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    for c in contenders:
        for m in models if c.per_model else models[:1]:
            run_contender(c, m, loads, logs, results)
    report = {
        "meta": meta(),
        "settings": {
            "duration_s": DURATION,
            "warmup_s": WARMUP,
            "server_cpu": SERVER_CPU,
            "load_cpu": LOAD_CPU,
            "mlserver_batching": MLSERVER_BATCHING,
        },
        "contenders": {c.key: c.title for c in contenders},
        "loads": {ld.key: ld.title for ld in loads},
        "models": {m.key: m.title for m in models},
        "floor_s": floors,
        "results": results,
        "cold_start": start,
    }
    report["targets"] = targets(report)
    report["meta"]["wall_s"] = round(time.monotonic() - started, 1)
    out = Path(os.environ.get("BENCH_OUT", ROOT / "build" / "bench" / "latest.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (out.parent / f"bench-{stamp}.json").write_text(out.read_text())
    print()
    print(render(report))
    print(
        f"\nsaved {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
        f"({report['meta']['wall_s']:.0f} s)"
    )
    return 0


def meta() -> dict[str, Any]:
    def sh(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False).stdout.strip()
        except OSError:
            return ""

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": sh("git", "rev-parse", "--short", "HEAD"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "python": platform.python_version(),
        "wrk": sh(WRK, "-v").splitlines()[0] if WRK else "",
    }


# -- report --------------------------------------------------------------------------------------

PEERS = ("mlserver", "mlserver-batch", "tutorial")
GRPC_PEERS = ("mlserver-grpc", "mlserver-batch-grpc")
GRPC_CONTENDERS = frozenset(c.key for c in CONTENDERS if c.grpc)


def _best_peer(
    results: list[dict[str, Any]], model: str, load: str, peers: tuple[str, ...] = PEERS
) -> dict[str, Any] | None:
    cells = [c for p in peers if (c := find_cell(results, model, p, load))]
    return max(cells, key=lambda c: c["rps"]) if cells else None


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, judged from this run's own numbers."""
    res, out = report["results"], []

    def add(name: str, ok: bool | None, detail: str) -> None:
        out.append({"target": name, "holds": ok, "detail": detail})

    for model, factor in (("iris-classifier", 3.0), ("linear", 2.0), ("boosting", 2.0)):
        ours, peer = find_cell(res, model, "ours", "c64"), _best_peer(res, model, "c64")
        if ours and peer:
            ratio = ours["rps"] / peer["rps"]
            add(
                f"{model}: 64 conn >= {factor:g}x best peer",
                ratio >= factor,
                f"{ours['rps']:.0f} vs {peer['contender']} {peer['rps']:.0f} req/s = {ratio:.2f}x",
            )
            add(
                f"{model}: 64 conn p99 <= best peer's",
                ours["p99_ms"] <= peer["p99_ms"],
                f"{ours['p99_ms']:.1f} ms vs {peer['p99_ms']:.1f} ms",
            )
    for model in ("iris-classifier", "linear", "boosting"):
        ours = find_cell(res, model, "ours-grpc", "c64")
        peer = _best_peer(res, model, "c64", GRPC_PEERS)
        if ours and peer:
            ratio = ours["rps"] / peer["rps"]
            add(
                f"{model}: gRPC 64 conn >= 2x best peer's gRPC",
                ratio >= 2.0,
                f"{ours['rps']:.0f} vs {peer['contender']} {peer['rps']:.0f} req/s = {ratio:.2f}x",
            )
            add(
                f"{model}: gRPC 64 conn p99 < best peer's gRPC",
                ours["p99_ms"] < peer["p99_ms"],
                f"{ours['p99_ms']:.1f} ms vs {peer['p99_ms']:.1f} ms",
            )
    ours, rest = find_cell(res, "linear", "ours-grpc", "c64"), find_cell(res, "linear", "ours", "c64")
    if ours and rest:
        add(
            "linear: gRPC 64 conn >= REST V2",
            ours["rps"] >= rest["rps"],
            f"{ours['rps']:.0f} vs {rest['rps']:.0f} req/s = {ours['rps'] / rest['rps']:.2f}x",
        )
    ours, ceil = find_cell(res, "linear", "ours", "c64"), find_cell(res, "linear", "ceiling", "c64")
    if ours and ceil:
        ratio = ours["rps"] / ceil["rps"]
        by_cpu = ceil["cpu_us_per_request"] / ours["cpu_us_per_request"]
        add(
            "linear: 64 conn >= 60% of ceiling",
            ratio >= 0.6,
            f"{ratio:.0%} of {ceil['rps']:.0f} req/s ({by_cpu:.0%} by CPU per request: "
            f"{ours['cpu_us_per_request']:.0f} vs {ceil['cpu_us_per_request']:.0f} us)",
        )
        add(
            "linear: 64 conn CPU us/req <= 100",
            ours["cpu_us_per_request"] <= 100,
            f"{ours['cpu_us_per_request']:.0f} us per request",
        )
    for model, floor in report["floor_s"].items():
        ours = find_cell(res, model, "ours", "c1")
        if ours:
            first = min(floor["array_1"], floor["frame_1"]) * 1000
            best = ours.get("floor_adjacent_ms", first)
            add(
                f"{model}: 1 conn p50 <= predict + 1 ms",
                ours["p50_ms"] <= best + 1,
                f"p50 {ours['p50_ms']:.2f} ms vs predict {best:.2f} ms + 1 ms "
                f"(measured right after the cell; {first:.2f} ms at the start of the run)",
            )
    if report.get("cold_start"):
        ready = report["cold_start"]["ready_s"]
        add("cold start <= 1.0 s (median)", ready <= 1.0, f"{ready:.2f} s from exec to /readyz 200")
        idle = report["cold_start"].get("idle_rss_mib")
        if idle is not None:
            add("demo idle RSS <= 150 MiB", idle <= 150, f"{idle:.0f} MiB in the image's environment")
    overload = ROOT / "build" / "bench" / "overload.json"
    if overload.exists() and overload.stat().st_mtime >= STARTED_AT - 3600:
        # make bench runs bench-overload just before this script: its targets belong to this run.
        out.extend(json.loads(overload.read_text()).get("targets", []))
    errs = [r for r in res if r.get("contender", "").startswith("ours") and r.get("errors")]
    if any(r.get("contender", "").startswith("ours") for r in res):
        add(
            "no errors (below the shedding point)",
            not errs,
            "none"
            if not errs
            else "; ".join(f"{r['contender']} {r['model']} {r['load']}: {r['error_kinds']}" for r in errs),
        )
    return out


def render(report: dict[str, Any]) -> str:
    res = report["results"]
    lines = []
    for model, title in report["models"].items():
        floor = report["floor_s"][model]
        one, many = min(floor["array_1"], floor["frame_1"]), min(floor["array_32"], floor["frame_32"])
        lines.append(
            f"## {model}: {title}; in-process predict: 1 row {one * 1e3:.3f} ms, 32 rows {many * 1e3:.3f} ms"
        )
        lines.append("")
        lines.append(
            "| contender | load | req/s | rows/s | p50 ms | p99 ms | errors | RSS MB | CPU us/req "
            "| x best MLServer | x best peer | x ceiling |"
        )
        lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for key, ctitle in report["contenders"].items():
            for load in report["loads"]:
                cell = find_cell(res, model, key, load)
                if cell is None:
                    continue
                grpc_row = key in GRPC_CONTENDERS
                # A gRPC row compares with MLServer's gRPC, an HTTP row with MLServer's REST.
                mls = _best_peer(res, model, load, GRPC_PEERS if grpc_row else ("mlserver", "mlserver-batch"))
                peer = _best_peer(res, model, load)
                ceil = find_cell(res, model, "grpc-ceiling" if grpc_row else "ceiling", load)

                def ratio(other: dict[str, Any] | None, cell: dict[str, Any] = cell) -> str:
                    return f"{cell['rps'] / other['rps']:.2f}" if other else "-"

                lines.append(
                    f"| {ctitle} | {report['loads'][load]} | {cell['rps']:.0f} | {cell['rows_per_s']:.0f} "
                    f"| {cell['p50_ms']:.2f} | {cell['p99_ms']:.2f} | {cell['errors']} "
                    f"| {cell['rss_mb']:.0f} | {cell['cpu_us_per_request']:.0f} | {ratio(mls)} "
                    f"| {ratio(peer)} | {ratio(ceil)} |"
                )
        lines.append("")
    failed = [r for r in res if "failed" in r]
    for r in failed:
        lines.append(f"FAILED: {r['contender']} on {r['model']}: {r['failed']}")
    if report.get("targets"):
        lines.append("| target | holds | measured |")
        lines.append("| --- | --- | --- |")
        for t in report["targets"]:
            lines.append(f"| {t['target']} | {'yes' if t['holds'] else 'NO'} | {t['detail']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
