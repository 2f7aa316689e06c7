"""What the end-to-end monitoring test needs around the real server processes.

- :class:`Prometheus`: the Debian ``prometheus`` binary on a free loopback port with temp storage,
  1 s scrape and evaluation intervals, and its HTTP API.
- :class:`ClusterExporters`: what kube-state-metrics and the kubelet's cAdvisor would export about the
  test's "pods" (there is no cluster here). Label sets follow those exporters; CPU seconds and memory
  are the real server processes' own (from /proc), restarts and HPA state are set by the scenario.
- :func:`grafana_interpolate`: dashboard variables substituted the way Grafana's Prometheus data
  source does it.
- :func:`sample_rows`: request rows drawn from a bundle's own reference statistics, so "clean" traffic
  looks like the training data by construction.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from .serverproc import free_port

SCRAPE_INTERVAL_SECONDS = 1


class Prometheus:
    def __init__(self, binary: str, workdir: Path, scrape_configs: list[dict], rule_file: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
                "scrape_timeout": f"{SCRAPE_INTERVAL_SECONDS}s",
                "evaluation_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
            },
            "rule_files": [str(rule_file)],
            "scrape_configs": scrape_configs,
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self._log = open(workdir / "prometheus.log", "wb")
        self.log_path = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.http = httpx.Client(base_url=self.url, timeout=10.0, trust_env=False)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.http.get("/-/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def api(self, path: str, **params: Any) -> Any:
        r = self.http.get(f"/api/v1/{path}", params=params)
        body = r.json()
        if body.get("status") != "success":
            raise PromQLError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        data = self.api("query", **params)
        return data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def series(self, match: str, start: float, end: float) -> list[dict]:
        return self.api("series", **{"match[]": match, "start": start, "end": end})

    def firing(self) -> list[dict]:
        return [a for a in self.api("alerts")["alerts"] if a["state"] == "firing"]

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class PromQLError(AssertionError):
    pass


def finite_values(result: list[dict]) -> list[float]:
    """Every sample value of a query result (vector or matrix) that is a finite number."""
    out = []
    for series in result:
        samples = series.get("values") or ([series["value"]] if "value" in series else [])
        for _, v in samples:
            f = float(v)
            if np.isfinite(f):
                out.append(f)
    return out


# -- the cluster's exporters -------------------------------------------------------------------------
@dataclass
class Pod:
    namespace: str
    model: str
    version: str
    name: str
    pid: int
    hpa: dict[str, int]  # current, desired, min, max replicas of the model's HPA
    restarts: Callable[[float], int] = lambda elapsed: 0
    labels: dict[str, str] = field(default_factory=dict)


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in kv.items()) + "}"


def _proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _proc_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class ClusterExporters:
    """Serves kube-state-metrics- and cAdvisor-shaped series for the test's pods on one port."""

    def __init__(self, pods: list[Pod]) -> None:
        self.pods = pods
        self.started = time.monotonic()
        exporters = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporters.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def exposition(self) -> str:
        elapsed = time.monotonic() - self.started
        samples: list[tuple[str, dict[str, str], float]] = []
        for p in self.pods:
            pod = {"namespace": p.namespace, "pod": p.name}
            ctr = {**pod, "container": "model-server"}
            hpa = {"namespace": p.namespace, "horizontalpodautoscaler": f"{p.model}-{p.namespace}"}
            model_labels = {
                "label_model_server_io_model": p.model,
                "label_model_server_io_model_version": p.version,
            }
            cpu = _proc_cpu_seconds(p.pid)
            samples += [
                ("kube_pod_labels", {**pod, "uid": p.name + "-uid", **model_labels}, 1),
                (
                    "kube_pod_container_status_restarts_total",
                    {**ctr, "uid": p.name + "-uid"},
                    p.restarts(elapsed),
                ),
                ("kube_horizontalpodautoscaler_labels", {**hpa, **model_labels}, 1),
                ("kube_horizontalpodautoscaler_status_current_replicas", hpa, p.hpa["current"]),
                ("kube_horizontalpodautoscaler_status_desired_replicas", hpa, p.hpa["desired"]),
                ("kube_horizontalpodautoscaler_spec_min_replicas", hpa, p.hpa["min"]),
                ("kube_horizontalpodautoscaler_spec_max_replicas", hpa, p.hpa["max"]),
                # cAdvisor: the container, and the pod-level cgroup (container="") that the dashboards
                # must not count twice
                ("container_cpu_usage_seconds_total", {**ctr, "image": "model-server"}, cpu),
                ("container_cpu_usage_seconds_total", {**pod, "container": ""}, cpu),
                (
                    "container_memory_working_set_bytes",
                    {**ctr, "image": "model-server"},
                    _proc_rss_bytes(p.pid),
                ),
                # CFS: one period per 100 ms; pretend a tenth of them were throttled
                ("container_cpu_cfs_periods_total", ctr, int(elapsed * 10)),
                ("container_cpu_cfs_throttled_periods_total", ctr, int(elapsed)),
            ]
            for resource, unit, request, limit in (
                ("cpu", "core", 0.5, 1),
                ("memory", "byte", 2**28, 2**29),
            ):
                labels = {**ctr, "node": "node-1", "resource": resource, "unit": unit}
                samples += [
                    ("kube_pod_container_resource_requests", labels, request),
                    ("kube_pod_container_resource_limits", labels, limit),
                ]
        return "".join(f"{name}{_labels(**labels)} {value}\n" for name, labels, value in samples)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- Grafana ---------------------------------------------------------------------------------------
def rate_interval(scrape_interval_s: float, interval_s: float) -> str:
    """Grafana's $__rate_interval: max($__interval + scrape interval, 4 * scrape interval)."""
    return f"{int(max(interval_s + scrape_interval_s, 4 * scrape_interval_s))}s"


def _regular_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def _regex_escape(value: str) -> str:
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*+?.()|\[\]{}]", lambda m: "\\\\" + m.group(0), value)


def grafana_interpolate(
    expr: str, variables: Mapping[str, dict], chosen: Mapping[str, list[str]], builtins: Mapping[str, str]
) -> str:
    """Substitute $var / ${var} as Grafana's Prometheus data source does (interpolateQueryExpr):
    a single-value variable is inserted as is; a multi-value or include-all one is regex-escaped and
    joined into (a|b) when it holds several values."""

    def value(name: str) -> str:
        if name in builtins:
            return builtins[name]
        var, values = variables[name], chosen[name]
        if not var.get("multi") and not var.get("includeAll"):
            return _regular_escape(values[0])
        escaped = [_regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: value(m.group(1) or m.group(2)), expr)


def resolve_variables(
    prom: Prometheus, board: dict, start: float, end: float, pick: Mapping[str, str]
) -> dict[str, list[str]]:
    """Each query variable's value, in dashboard order, as Grafana would offer it: options from
    label_values() against Prometheus; ``pick`` chooses a single value, otherwise All (every option)."""
    variables = {v["name"]: v for v in board["templating"]["list"]}
    chosen: dict[str, list[str]] = {}
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = grafana_interpolate(var["query"], variables, chosen, {})
        metric, label = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query).groups()
        options = sorted({s[label] for s in prom.series(metric, start, end) if label in s})
        assert options, f"variable {var['name']}: {query} offers nothing"
        if var["name"] in pick:
            assert pick[var["name"]] in options, (var["name"], pick[var["name"]], options)
            chosen[var["name"]] = [pick[var["name"]]]
        else:
            assert var.get("includeAll"), f"variable {var['name']} needs a choice"
            chosen[var["name"]] = options
    return chosen


# -- traffic ---------------------------------------------------------------------------------------
def _bin_value(stat: dict, b: int, integer: bool) -> Any:
    if stat["kind"] == "categorical":
        return b
    edges = stat["edges"]
    if b == 0:
        v = edges[0]
    elif b == len(edges):
        v = edges[-1] + 1.0
    else:
        v = (edges[b - 1] + edges[b]) / 2
    return int(np.ceil(v)) if integer else float(v)


def sample_rows(metadata: dict, n: int, rng: np.random.Generator, shift: bool = False) -> list[dict]:
    """``n`` records whose every feature follows the reference's bin shares; ``shift`` puts every
    numeric feature above its highest training decile instead (a clear input drift)."""
    columns = {}
    for f in metadata["features"]:
        stat = metadata["reference"]["features"][f["name"]]
        integer = f["dtype"] == "int"
        if stat["kind"] == "categorical":
            values = [k for k in stat["counts"] if k != "__other__"]
            weights = np.array([stat["counts"][k] for k in values], dtype=float)
            columns[f["name"]] = list(rng.choice(values, size=n, p=weights / weights.sum()))
            continue
        counts = np.array(stat["counts"], dtype=float)
        bins = (
            np.full(n, len(counts) - 1) if shift else rng.choice(len(counts), size=n, p=counts / counts.sum())
        )
        columns[f["name"]] = [_bin_value(stat, int(b), integer) for b in bins]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(columns, row)}
        for row in zip(*columns.values())
    ]
