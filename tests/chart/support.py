"""Helpers of the chart and image tests (importable as ``chart.support``): run the pinned tools,
render the chart, read the Kubernetes schemas kubernetes-validate ships.

A missing tool is a failure that says to run `make tools`, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import ROOT, tools_env

CHART = ROOT / "charts" / "model-server"
# Every values file a user or CI installs with: the scenarios kind installs, and the documented examples.
VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml")) + sorted(
    (CHART / "examples").glob("*-values.yaml")
)
# A version inside the chart's kubeVersion range, for renders that do not test the range itself.
KUBE_VERSION = "1.33.0"


def tool(name: str) -> str:
    path = shutil.which(name, path=tools_env()["PATH"])
    if path is None:
        pytest.fail(f"{name} is not installed: run `make tools`", pytrace=False)
    return path


def run(args: Sequence[str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = kw.pop("env", None) or tools_env()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, **kw)
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    return proc


def helm_template_args(
    values_files: Iterable[Path] = (),
    sets: dict[str, str] | None = None,
    kube_version: str = KUBE_VERSION,
    chart: Path = CHART,
    release: str = "iris",
    namespace: str = "models",
) -> list[str]:
    args = [
        tool("helm"),
        "template",
        release,
        str(chart),
        "--namespace",
        namespace,
        "--kube-version",
        kube_version,
    ]
    for f in values_files:
        args += ["-f", str(f)]
    for key, value in (sets or {}).items():
        args += ["--set-json", f"{key}={value}"]
    return args


def render(
    *values_files: Path,
    sets: dict[str, str] | None = None,
    kube_version: str = KUBE_VERSION,
    chart: Path = CHART,
) -> list[dict[str, Any]]:
    """`helm template` (hooks included) -> the list of rendered objects. ``sets`` values are JSON."""
    out = run(helm_template_args(values_files, sets, kube_version, chart)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[d['kind'] for d in docs]}"
    return found[0]


def kube_version_floor() -> str:
    """The lowest Kubernetes version Chart.yaml's kubeVersion claims (">=1.30.0-0" -> "1.30.0")."""
    claim = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    m = re.fullmatch(r">=\s*(\d+\.\d+\.\d+)(-0)?", claim.strip())
    assert m, f"tests/chart expects kubeVersion of the form '>=X.Y.Z-0', got {claim!r}"
    return m[1]


K8S_SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


def newest_schema_version() -> str:
    versions = [p.name[1:].removesuffix("-local-strict") for p in K8S_SCHEMAS.glob("v*-local-strict")]
    return max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


def kube_versions() -> list[str]:
    """The lowest version the chart claims, the newest kubernetes-validate has schemas for, and one
    in between."""
    low, high = kube_version_floor(), newest_schema_version()
    lo_minor, hi_minor = int(low.split(".")[1]), int(high.split(".")[1])
    assert lo_minor < hi_minor, f"kubernetes-validate has no schemas newer than the chart's floor {low}"
    return [low, f"1.{(lo_minor + hi_minor) // 2}.0", high]


def write_local_schemas(version: str, out: Path) -> Path:
    """kubernetes-validate's strict schemas for one version, made usable by kubeconform offline.

    Each file has `$id: https://kubernetes.io/api/...` and refs `/api/_definitions.json#...`, which
    kubeconform would try to fetch from kubernetes.io; without the $id and with relative refs they
    resolve next to the file. Written as `out/v<version>/<kind>-<group>-<apiversion>.json`.
    """
    src = K8S_SCHEMAS / f"v{version}-local-strict"
    assert src.is_dir(), f"kubernetes-validate has no schemas for Kubernetes {version}"
    dst = out / f"v{version}"
    dst.mkdir(parents=True)
    for f in src.glob("*.json"):
        data = json.loads(f.read_text().replace('"/api/_definitions.json#', '"_definitions.json#'))
        data.pop("$id", None)
        (dst / f.name).write_text(json.dumps(data))
    return out


# --- Running what a rendered pod spec says, on this machine ------------------------------------------
# No kubelet and no container engine here: a container's command, args and env are taken verbatim from
# the rendered manifest; its mount paths are mapped to host directories (emptyDirs become temp dirs,
# Secrets files the test writes, paths the image provides point at what the image build produced).


class Mounts:
    """Container path -> host path, longest prefix first; translates paths in args and env values."""

    def __init__(self, mapping: dict[str, Path]) -> None:
        self.mapping = dict(sorted(mapping.items(), key=lambda kv: -len(kv[0])))

    def host(self, value: str) -> str:
        for container, host in self.mapping.items():
            if value == container or value.startswith(container.rstrip("/") + "/"):
                return str(host) + value[len(container.rstrip("/")) :]
        return value


def pod_mounts(
    pod_spec: dict[str, Any],
    container: dict[str, Any],
    volumes: dict[str, Path],
    image_paths: dict[str, Path],
) -> Mounts:
    """The container's volumeMounts resolved to host dirs: ``volumes`` maps a volume name to the host
    directory standing in for it (subPath applied here); ``image_paths`` are the image's own files."""
    declared = {v["name"] for v in pod_spec.get("volumes", [])}
    mapping: dict[str, Path] = dict(image_paths)
    for m in container.get("volumeMounts", []):
        assert m["name"] in declared, f"mount of undeclared volume {m['name']}"
        assert m["name"] in volumes, f"the test provides no host dir for volume {m['name']}"
        mapping[m["mountPath"]] = volumes[m["name"]] / m.get("subPath", "")
    return Mounts(mapping)


def container_argv(container: dict[str, Any], mounts: Mounts, path: str) -> list[str]:
    """command + args as the kubelet would run them; the executable is looked up on ``path``."""
    argv = [*container.get("command", []), *container.get("args", [])]
    assert argv, "the chart must set the command explicitly (the contract test runs exactly that)"
    exe = shutil.which(argv[0], path=path)
    assert exe, f"{argv[0]} not found on {path}"
    return [exe, *(mounts.host(a) for a in argv[1:])]


def container_env(container: dict[str, Any], mounts: Mounts, path: str) -> dict[str, str]:
    """The container's env, literal values only (the chart uses no valueFrom), paths mapped."""
    env = {"PATH": path}
    for e in container.get("env", []):
        assert "value" in e, f"unexpected env source {e}"
        env[e["name"]] = mounts.host(e["value"])
    return env


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """One request without proxies; (status, body) also for 4xx/5xx."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def probe(container: dict[str, Any], kind: str, host: str = "127.0.0.1") -> tuple[int | None, bytes]:
    """Run one httpGet probe of the container as the kubelet would: named port resolved via ports."""
    spec = container[f"{kind}Probe"]["httpGet"]
    port = spec["port"]
    if isinstance(port, str):
        port = next(p["containerPort"] for p in container["ports"] if p["name"] == port)
    try:
        return http(
            "GET",
            f"http://{host}:{port}{spec['path']}",
            timeout=container[f"{kind}Probe"].get("timeoutSeconds", 1),
        )
    except OSError as e:
        return None, str(e).encode()


class Process:
    """A process started from a container's argv/env, its output captured; stop() sends SIGTERM."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.log_path = cwd / f"{Path(argv[0]).name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"did not exit within {timeout} s of SIGTERM:\n{self.log()}") from None
        finally:
            self._log.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def wait_for(check: Any, timeout: float, what: str, proc: Process | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(
                f"process exited with {proc.proc.returncode} while waiting for {what}:\n{proc.log()}"
            )
        try:
            result = check()
        except OSError:  # not listening yet
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what}" + (f":\n{proc.log()}" if proc else "")
    )
