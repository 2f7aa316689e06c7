"""Running what a rendered pod spec says, on this machine: the chart's contract test starts the server
exactly as the rendered Deployment would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

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
