"""Start the real ``model-server serve`` process for a test, on a free loopback port.

    from support.serverproc import start_server

    with start_server(bundle, env={"MAX_IN_FLIGHT": "4"}) as srv:   # waits for /readyz 200
        urllib.request.urlopen(srv.url("/healthz"))
        ...
    srv.exit_code   # 0 after a clean SIGTERM shutdown

- ``start_server(bundle, env=None, wait="ready", timeout=60)``: ``bundle`` is a bundle directory (or
  None to rely on MODEL_BUNDLE in ``env``); ``wait`` is "ready" (GET /readyz returns 200), "live"
  (GET /healthz returns 200: use it for bad-bundle tests) or None. Raises ``ServerError`` with the
  captured log if the process exits or the wait times out.
- ``ServerProcess``: ``base_url``, ``port``, ``grpc_port`` and ``grpc_target`` (``127.0.0.1:PORT`` of
  its gRPC listener, a free port of its own too), ``pid``, ``url(path)``, ``log()`` (everything the process
  wrote to stdout/stderr so far), ``log_lines()`` (its JSON log lines, parsed), ``wait_ready()``,
  ``stop(timeout=30) -> exit code`` (SIGTERM, then wait; SIGKILL and ``ServerError`` on timeout).
  Leaving the ``with`` block calls ``stop()`` if the test did not.
- ``http_get``, ``post_json``: (status, body) without raising for 4xx/5xx; ``wait_failed(readyz_url)``:
  the reason a bad bundle reports once its load has failed; ``metric(srv, "name{labels...")``: the
  value of the first /metrics sample that starts so (0 when absent); ``wait_until(predicate)``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .paths import ROOT

MODEL_SERVER = ROOT / ".venv" / "bin" / "model-server"
# No proxy for loopback, whatever the environment says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET without raising for 4xx/5xx: returns (status, body)."""
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def post_json(url: str, doc: Any, timeout: float = 10.0) -> tuple[int, bytes]:
    """POST ``doc`` as JSON without raising for 4xx/5xx: returns (status, body)."""
    req = urllib.request.Request(url, json.dumps(doc).encode(), {"Content-Type": "application/json"})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_failed(readyz_url: str, timeout: float = 60.0) -> str:
    """The readiness reason once loading has failed; fails the test if the bundle ever becomes ready."""
    deadline = time.monotonic() + timeout
    doc: Any = None
    while time.monotonic() < deadline:
        status, body = http_get(readyz_url)
        doc = json.loads(body)
        assert status == 503, f"a bad bundle became ready: {doc}"
        if doc["status"] == "failed":
            return str(doc["reason"])
        time.sleep(0.1)
    raise AssertionError(f"{readyz_url} still says {doc} after {timeout} s")


def metric(srv: ServerProcess, line_start: str) -> float:
    text = http_get(srv.url("/metrics"))[1].decode()
    for line in text.splitlines():
        # The name, or the name with its first labels: what follows is the rest of them or the value.
        rest = line[len(line_start) : len(line_start) + 1]
        if line.startswith(line_start) and rest in (" ", "{", ",", "}"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_until(predicate: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.05)


class ServerProcess:
    def __init__(self, bundle: Path | str | None, env: dict[str, str] | None) -> None:
        if not MODEL_SERVER.exists():
            raise ServerError(f"{MODEL_SERVER} is missing: run `make venv`")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.grpc_port = free_port()
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self._log = tempfile.NamedTemporaryFile(prefix="model-server-", suffix=".log", delete=False)
        full_env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        full_env.update({"HOST": "127.0.0.1", "PORT": str(self.port), "GRPC_PORT": str(self.grpc_port)})
        full_env.update(env or {})
        args = [str(MODEL_SERVER), "serve"] + ([str(bundle)] if bundle is not None else [])
        self.proc = subprocess.Popen(
            args, env=full_env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.pid = self.proc.pid
        self.exit_code: int | None = None
        self._final_log: str | None = None

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        if self._final_log is not None:  # after the with block: kept in memory, the file is gone
            return self._final_log
        return Path(self._log.name).read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
        return lines

    def _wait(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"model-server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                status, _ = http_get(self.url(path), timeout=1.0)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise ServerError(f"{path} did not return 200 within {timeout} s:\n{self.log()}")

    def wait_live(self, timeout: float = 60.0) -> None:
        self._wait("/healthz", timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        self._wait("/readyz", timeout)

    def stop(self, timeout: float = 30.0) -> int:
        if self.exit_code is not None:
            return self.exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.exit_code = self.proc.wait()
            raise ServerError(
                f"model-server did not exit within {timeout} s of SIGTERM:\n{self.log()}"
            ) from None
        return self.exit_code

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self._final_log = self.log()
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)


def start_server(
    bundle: Path | str | None,
    env: dict[str, str] | None = None,
    wait: str | None = "ready",
    timeout: float = 60.0,
) -> ServerProcess:
    srv = ServerProcess(bundle, env)
    try:
        if wait == "ready":
            srv.wait_ready(timeout)
        elif wait == "live":
            srv.wait_live(timeout)
    except BaseException:
        srv.__exit__()
        raise
    return srv
