"""Every setting of the server, in one typed place, read from environment variables.

Each field says, next to its default, why that default and what the Helm chart does with it: the
chart value that sets it (``values``: tests check that values.yaml, values.schema.json and the
deployment's env mapping carry it), or why the chart offers no value for it (``not_a_value``). The
configuration reference (docs/user-guide/configuration.md) is generated from these fields:
``python -m model_server.settings docs/user-guide/configuration.md`` (``--check`` only compares).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_MAX_ARCHIVE_BYTES = 2 * 1024**3


def parse_bool(raw: str) -> bool | None:
    """true/1/yes/on or false/0/no/off in any case (None for anything else): for the settings and for
    the request options that take a boolean."""
    value = raw.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


class SettingsError(ValueError):
    """An environment variable holds a value the server cannot use; the message names it."""


def _setting(
    default: Any,
    why: str,
    *,
    values: str | None = None,
    not_a_value: str | None = None,
    shown_default: str | None = None,
) -> Any:
    """A setting's default and documentation. Exactly one of ``values`` (the chart value that sets it)
    and ``not_a_value`` (why the chart has none) is given; ``shown_default`` replaces the default in the
    docs where the bare value would mislead."""
    if (values is None) == (not_a_value is None):
        raise TypeError("a setting names its chart value or says why it has none, not both")
    meta = {"why": why, "values": values, "not_a_value": not_a_value, "shown_default": shown_default}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    # _setting returns a dataclasses.field (its default None): nothing mutable is shared.
    model_bundle: Path | None = _setting(  # noqa: RUF009
        None,
        "bundle directory; `serve BUNDLE` overrides it. The image sets "
        "`/opt/model-server/bundles/iris-classifier`",
        not_a_value="the chart sets it to where `model.source` puts the bundle in the pod",
    )
    model_name: str | None = _setting(
        None,
        "the deployment's expected model name: a bundle with another name never becomes ready, so a "
        "deployment that asks for iris never silently serves another model",
        values="model.name",
        shown_default="unset (accept the bundle's)",
    )
    model_version: str | None = _setting(
        None,
        "the deployment's expected model version: a deployment that asks for 1.2.0 never silently "
        "serves 1.1.0",
        values="model.version",
        shown_default="unset (accept the bundle's)",
    )
    host: str = _setting(
        "127.0.0.1",
        "listen address: loopback by default, so `make serve` is not exposed; the image sets `0.0.0.0`",
        not_a_value="the chart always sets `0.0.0.0`: the Service, the probes and Prometheus reach the "
        "pod on its own address",
    )
    port: int = _setting(
        8000, "the HTTP port: every protocol over HTTP, health, metrics", values="server.port"
    )
    grpc_enabled: bool = _setting(
        True,
        "serve the Open Inference Protocol over gRPC on `GRPC_PORT` as well, in the same process and "
        "through the same runtime, limits and metrics as HTTP; `false` opens no second port",
        values="grpc.enabled",
    )
    grpc_port: int = _setting(
        8081,
        "the gRPC port (the Open Inference Protocol's `GRPCInferenceService`, `grpc.health.v1.Health`, "
        "server reflection): 8081 as KServe's and MLServer's gRPC ports, next to the HTTP port",
        values="grpc.port",
    )
    grpc_max_message_bytes: int = _setting(
        4 * 1024 * 1024,
        "largest gRPC request message, else RESOURCE_EXHAUSTED: the same bound as `MAX_BODY_BYTES` (and "
        "gRPC's own default), for the same reason: it bounds what one client makes the server hold. 4 MiB "
        "of raw FP64 tensor data is 512 Ki values, `MAX_REQUEST_ROWS` rows of 128 features. gRPC itself "
        "drops a message over twice this before reading it; between the two the answer names this setting",
        values="grpc.maxMessageBytes",
        shown_default="`4194304` (4 MiB)",
    )
    max_body_bytes: int = _setting(
        4 * 1024 * 1024,
        "largest request body, else 413. 4 MiB holds `MAX_REQUEST_ROWS` rows of ~1 KB of named-feature "
        "JSON each (about 40 numeric features), while `MAX_IN_FLIGHT` bodies at the limit still fit in "
        "256 MiB: a parsed JSON body takes several times its size in Python objects, so this is the knob "
        "that bounds memory under attack",
        values="server.maxBodyBytes",
        shown_default="`4194304` (4 MiB)",
    )
    max_request_rows: int = _setting(
        4096,
        "most rows in one request, else 413: the largest bucket of `model_server_request_rows`, and "
        "for a 100-tree forest about 0.1-0.3 s of CPU, short enough that one big request cannot starve "
        "small ones for long",
        values="server.maxRequestRows",
    )
    max_in_flight: int = _setting(
        64,
        "most prediction requests in progress, else 429 at once: enough concurrency to keep the model "
        "busy (and to feed the micro-batcher) behind one worker; beyond it a request would only queue, "
        "so the client (or the autoscaler) can react instead of timing out",
        values="server.maxInFlight",
    )
    request_timeout_seconds: float = _setting(
        10.0,
        "deadline of one prediction request, else 504: far above a normal answer (milliseconds) so it "
        "only fires on real overload, below common client and ingress timeouts (30-60 s) so the client "
        "gets a clear 504 from us, and well inside `SHUTDOWN_GRACE_SECONDS` so a request started just "
        "before SIGTERM ends before the grace runs out",
        values="server.requestTimeoutSeconds",
    )
    trusted_types: tuple[str, ...] = _setting(
        (),
        "comma-separated extra types the skops loader may build, on top of the built-in list "
        "(bundle/trust.py); never read from the bundle. Only list types you have reviewed",
        values="server.trustedTypes",
    )
    allow_sklearn_version_mismatch: bool = _setting(
        False,
        "serve a bundle saved with another scikit-learn minor version: predictions can change between "
        "minors, so it is refused unless this is set after checking them",
        values="server.allowSklearnVersionMismatch",
    )
    return_probabilities: bool = _setting(
        False,
        "return class probabilities when a request does not say; per request: `?probabilities=`, V2 "
        "`outputs`/`parameters`",
        values="server.returnProbabilities",
    )
    log_level: str = _setting("info", "debug, info, warning, error or critical", values="server.logLevel")
    log_flush_interval_ms: float = _setting(
        200.0,
        "log lines (one per request) are written to stdout in batches at most this far apart, and at "
        "once for a warning or an error; 0 writes every line as it comes. One write per line was a "
        "system call per request, and on a container's stdout (a pipe) a wake-up of the log reader "
        "each time (docs/performance.md, cost per request). 200 ms keeps `kubectl logs -f` live to the "
        "eye, and is the most of info lines a killed process can lose",
        not_a_value="how the server writes its own log, measured with `make bench`; `server.extraEnv` "
        "sets it (0 for a debugging session that wants every line at once)",
    )
    log_request_bodies: bool = _setting(
        False,
        "request bodies can hold personal data: only when debugging (the first 16 KiB, in the "
        "request's log line)",
        values="server.logRequestBodies",
    )
    shutdown_grace_seconds: float = _setting(
        20.0,
        "time from SIGTERM to exit for the requests in flight; below Kubernetes' default 30 s "
        "termination grace",
        values="server.shutdownGraceSeconds",
    )
    keep_alive_seconds: float = _setting(
        75.0,
        "how long an idle kept-alive HTTP connection stays open (uvicorn's `timeout_keep_alive`, whose "
        "own default is 5 s). Closing an idle connection races with a client that reuses it at that "
        "moment: its request meets a closed socket. The side that closes should be the client's pool, "
        "so the server waits longer than the idle timeouts in front of it and calling it: 75 s is "
        "nginx's `keepalive_timeout` and above the 60 s idle timeout of AWS load balancers (which ask "
        "backends for more than theirs). An idle connection costs a few KiB",
        not_a_value="a property of the HTTP transport; `server.extraEnv` sets it, e.g. above a load "
        "balancer's idle timeout that is longer than 75 s",
    )
    drain_idle_seconds: float = _setting(
        2.0,
        "after SIGTERM, how long a kept-alive connection must have been idle before the server closes "
        "it (http/drain.py). Every answer after SIGTERM says `Connection: close`, so a client in the "
        "middle of a run of requests moves to a new connection by itself; only one idle this long, "
        "after the preStop sleep took the pod out of the endpoints, is closed under the client, and such "
        "a client is not sending. Bounded by `SHUTDOWN_GRACE_SECONDS`",
        not_a_value="part of the shutdown sequence, which the chart sets with `preStopSleepSeconds` and "
        "`server.shutdownGraceSeconds`; `server.extraEnv` sets it",
    )
    batching: bool = _setting(
        True,
        "micro-batching (runtime/batching.py): rows of concurrent requests share model calls. On, "
        "because it wins or ties everywhere measured (`make bench`): a lone request never waits, "
        "concurrent ones share calls (64 connections: 4-6x the requests/s of one call per request on "
        "the forest and the linear model)",
        values="batching.enabled",
    )
    gil_switch_interval_ms: float = _setting(
        0.5,
        "how long a Python thread may hold the GIL while another waits for it (`sys.setswitchinterval`, "
        "set when `serve` starts; Python's default is 5 ms). The model thread needs the GIL back between "
        "the native steps of a call (every tree of a forest); with the event loop busy reading and "
        "refusing requests it waited up to 5 ms each time, and on one core a forest's accepted rate fell "
        "to an eighth under 8x overload. At 0.5 ms a model call contended by a busy thread runs 1.3-1.4x "
        "faster, and the linear model at 64 connections costs no more CPU per request "
        "(docs/performance.md, overload)",
        not_a_value="a property of how the server's own threads share the interpreter, measured with "
        "`make bench`; `server.extraEnv` sets it for an experiment",
    )
    batch_max_rows: int = _setting(256, "most rows in one batched model call", values="batching.maxRows")
    batch_max_wait_ms: float = _setting(
        2.0,
        "longest the oldest queued request waits for its batch to fill, capped at the recent duration "
        "of one model call",
        values="batching.maxWaitMs",
    )
    batch_queue_rows: int = _setting(
        8192, "rows allowed to wait in the batch queue, else 429", values="batching.queueRows"
    )
    max_queue_wait_ms: float = _setting(
        100.0,
        "with batching, a prediction request is refused with 429 before its body is read when the "
        "rows already queued or on their way (the usual rows of each request in flight) would take "
        "longer than this to reach the model, at its recent time per row (one full batch is always "
        "let in). Under overload the server then keeps the model busy with what it can answer soon "
        "and refuses the rest at once, instead of reading, decoding and queueing requests that wait "
        "seconds or are refused once decoded (docs/performance.md, overload: at 8x the load the "
        "accepted rate stays at capacity). 100 ms: a dozen calls of the demo forest on 256-row requests "
        "and more of faster models, so the model never starves, while a request accepted under "
        "overload answers in about the bound plus its own call (p99 120-160 ms at 2x-8x the load for "
        "that forest, 220-300 ms with 250 ms); a slower model still gets one full batch queued. 50 ms "
        "already refuses eight clients sending 256-row requests back to back. Lower it for a tighter "
        "tail, raise it to refuse less under bursts",
        not_a_value="a bound on the server's own queue, measured with `make bench-overload`; "
        "`server.extraEnv` sets it where a deployment needs another",
    )
    inline_predict_max_ms: float = _setting(
        1.0,
        "with batching, a model whose recent calls took less than this is called on the event loop "
        "instead of the model thread: for a call that short (a linear model, a small tree) the hand-off "
        "to the thread and back costs about as much as the call itself (docs/performance.md, cost per "
        "request). A slower model (the demo forest: 4 ms and more a call) stays in its thread, so "
        "health checks and new requests are never held up by more than this. 0 sends every call to "
        "the thread",
        not_a_value="a property of how the server schedules its own work, measured with `make bench`; "
        "`server.extraEnv` sets it for an experiment",
    )
    array_input: bool = _setting(
        True,
        "call a DataFrame-fitted model on numeric columns with a plain array when, at load, it answers "
        "sample rows exactly as it does the DataFrame (runtime/array_input.py): 0.43 -> 0.06 ms a call "
        "for a linear model on ten columns. `false` keeps the DataFrame on every call",
        values="server.arrayInput",
    )
    auth_tokens_file: Path | None = _setting(  # noqa: RUF009
        None,
        "file of accepted bearer tokens, one per line, re-read when it changes; unset: no authentication",
        not_a_value="`auth.enabled` mounts `auth.existingSecret` and points this at its file",
        shown_default="unset (no auth)",
    )
    drift_window_rows: int = _setting(
        10000,
        "rows in the drift window (memory: rows x (features + 1) bytes); 0 turns drift tracking off",
        values="server.driftWindowRows",
    )
    max_artifact_unpacked_bytes: int | None = _setting(
        None,
        "most bytes `model.skops` (a zip) may declare unpacked, checked in its central directory before "
        "skops inflates anything (bundle/artifact_limits.py), so a zip bomb is refused with a reason "
        "instead of OOM-killing the pod on every start. Unset, the cap follows the container's memory "
        "limit (cgroup v2 or v1): loading peaks at about 3 times the unpacked size (skops reads every "
        "member twice and holds the bytes while it builds the arrays: 234 MB for an 84 MB artifact) "
        "plus ~200 MiB for the libraries, so the cap is (limit - 200 MiB) / 3, at least 64 MiB and at "
        "most 4 GiB (also the cap with no limit readable): 104 MiB for the chart's default 512Mi pod. "
        "A model past that needs a bigger pod, or this set on purpose; a value set here always wins",
        values="server.maxArtifactUnpackedBytes",
        shown_default="unset: from the memory limit, at most `4294967296` (4 GiB)",
    )
    # The next four are read by `model-server fetch` and `push` (the chart's init container), never by
    # the serving process.
    max_archive_bytes: int = _setting(
        _MAX_ARCHIVE_BYTES,
        "largest bundle archive `model-server fetch` downloads, and the most it may unpack to "
        "(bundle/fetch.py): a bundle is a model plus a small JSON file, so 2 GiB bounds a wrong or hostile "
        "URL or object before it fills the volume. It can be lowered, not raised",
        not_a_value="a safety cap of the fetch init container, not a tuning knob: the default holds any "
        "bundle the server can load in the chart's pods",
        shown_default="`2147483648` (2 GiB)",
    )
    fetch_deadline_seconds: float = _setting(
        900.0,
        "the whole transfer from a bucket, retries and resumes included: 15 minutes moves the largest "
        "archive (2 GiB) at 2.4 MB/s, and a pod that cannot fetch its model in that time should say so "
        "(not ready, with the reason) rather than wait on",
        not_a_value="read by the fetch init container, which the chart sets from "
        "`model.source.bucket.deadlineSeconds`",
    )
    fetch_stall_seconds: float = _setting(
        30.0,
        "a bucket connection silent this long is dropped and the download resumed from the last byte: "
        "30 s rides out a busy store's pauses and still notices a dead connection long before the deadline",
        not_a_value="read by the fetch init container; the default suits every store tested, so the chart "
        "leaves it",
    )
    storage_credentials_dir: Path | None = _setting(  # noqa: RUF009
        None,
        "a folder of credential files named like the cloud's variables (`AWS_ACCESS_KEY_ID`, ...; "
        "bundle/buckets.py `CREDENTIAL_VARIABLES`), so keys never sit in the environment",
        not_a_value="the chart points the fetch init container at the bucket source's Secret mounted "
        "as files (`model.source.bucket.credentials.mountAs: file`)",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read every setting from ``environ`` (default: os.environ); ``overrides`` win (CLI args)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name, str(f.type), raw.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        positive = (
            "max_body_bytes",
            "max_request_rows",
            "max_in_flight",
            "request_timeout_seconds",
            "batch_max_rows",
            "batch_queue_rows",
            "max_artifact_unpacked_bytes",
            "max_archive_bytes",
            "fetch_deadline_seconds",
            "fetch_stall_seconds",
            "grpc_max_message_bytes",
            "gil_switch_interval_ms",
            "max_queue_wait_ms",
            "keep_alive_seconds",
        )
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise SettingsError(f"{name.upper()} must be greater than 0, got {getattr(self, name)}")
        never_negative = (
            "shutdown_grace_seconds",
            "drain_idle_seconds",
            "batch_max_wait_ms",
            "log_flush_interval_ms",
            "inline_predict_max_ms",
        )
        for name in never_negative:
            if getattr(self, name) < 0:
                raise SettingsError(f"{name.upper()} must not be negative, got {getattr(self, name)}")
        if self.drift_window_rows < 0:  # 0 turns drift tracking off (drift.build_drift_monitor)
            raise SettingsError(f"DRIFT_WINDOW_ROWS must not be negative, got {self.drift_window_rows}")
        if self.max_archive_bytes > _MAX_ARCHIVE_BYTES:
            raise SettingsError(
                f"MAX_ARCHIVE_BYTES must be at most {_MAX_ARCHIVE_BYTES} (the most an archive may unpack "
                f"to), got {self.max_archive_bytes}"
            )
        if not 0 < self.port < 65536:
            raise SettingsError(f"PORT must be between 1 and 65535, got {self.port}")
        if not 0 < self.grpc_port < 65536:
            raise SettingsError(f"GRPC_PORT must be between 1 and 65535, got {self.grpc_port}")
        if self.grpc_enabled and self.grpc_port == self.port:
            raise SettingsError(
                f"GRPC_PORT and PORT are both {self.port}: give gRPC its own port, or set GRPC_ENABLED=false"
            )
        if self.log_level not in _LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {self.log_level!r}")


def _parse(name: str, type_name: str, raw: str) -> object:
    var = name.upper()
    try:
        if "bool" in type_name:
            value = parse_bool(raw)
            if value is None:
                raise ValueError("expected true/false/1/0/yes/no/on/off")
            return value
        if type_name in ("int", "int | None"):
            return int(raw)
        if type_name == "float":
            return float(raw)
        if "Path" in type_name:
            return Path(raw)
        if "tuple" in type_name:
            return tuple(t.strip() for t in raw.split(",") if t.strip())
        if name == "log_level":
            return raw.lower()
        return raw
    except ValueError as e:
        raise SettingsError(f"{var}={raw!r} is not valid: {e}") from None


# ---- the configuration reference, generated from the fields above ------------------------------

TABLE_START = "<!-- settings table: generated from service/model_server/settings.py, do not edit -->"
TABLE_END = "<!-- end of settings table -->"


def env_name(f: Field[Any]) -> str:
    return f.name.upper()


def _shown_default(f: Field[Any]) -> str:
    if f.metadata["shown_default"] is not None:
        return str(f.metadata["shown_default"])
    value = f.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`" if value else "empty"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def settings_table() -> str:
    """The Markdown table of every setting: variable, default, chart value, why."""
    lines = ["| variable | default | chart value | why |", "| --- | --- | --- | --- |"]
    for f in fields(Settings):
        values, reason = f.metadata["values"], f.metadata["not_a_value"]
        chart = f"`{values}`" if values is not None else f"none: {reason}"
        lines.append(f"| `{env_name(f)}` | {_shown_default(f)} | {chart} | {f.metadata['why']} |")
    return "\n".join(lines)


def with_table(document: str) -> str:
    """``document`` with the text between the table markers replaced by the current table."""
    start, end = document.find(TABLE_START), document.find(TABLE_END)
    if start < 0 or end < start:
        raise SettingsError(f"the document has no {TABLE_START!r} ... {TABLE_END!r} markers")
    return document[: start + len(TABLE_START)] + "\n" + settings_table() + "\n" + document[end:]


def main(argv: Sequence[str]) -> int:
    """``python -m model_server.settings DOC.md [--check]``: write the table into DOC.md, or only say
    whether it is current."""
    args = [a for a in argv if a != "--check"]
    if len(args) != 1:
        print("usage: python -m model_server.settings DOC.md [--check]", file=sys.stderr)
        return 2
    path = Path(args[0])
    current = path.read_text()
    wanted = with_table(current)
    if current == wanted:
        return 0
    if "--check" in argv:
        print(f"{path} does not match settings.py: run `make settings-doc`", file=sys.stderr)
        return 1
    path.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
