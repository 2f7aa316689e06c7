"""Every setting of the server, in one typed place, read from environment variables.

The names are the deployment contract (the chart sets them); the README table mirrors this file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_MAX_ARCHIVE_BYTES = 2 * 1024**3


class SettingsError(ValueError):
    """An environment variable holds a value the server cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    model_bundle: Path | None = None
    # Expected name/version: a deployment that asks for iris 1.2.0 must not silently serve 1.1.0.
    model_name: str | None = None
    model_version: str | None = None
    # Loopback by default so a developer's `make serve` is not exposed; the image sets 0.0.0.0.
    host: str = "127.0.0.1"
    port: int = 8000
    # 4 MiB holds MAX_REQUEST_ROWS rows of ~1 KB of named-feature JSON each (about 40 numeric features),
    # while MAX_IN_FLIGHT bodies at the limit still fit in 256 MiB: a parsed JSON body takes several
    # times its size in Python objects, so this is the knob that bounds memory under attack.
    max_body_bytes: int = 4 * 1024 * 1024
    # 4096 rows: the largest bucket of model_server_request_rows, and for a 100-tree forest about
    # 0.1-0.3 s of CPU, short enough that one big request cannot starve small ones for long.
    max_request_rows: int = 4096
    # 64 concurrent prediction requests: enough concurrency to keep the model busy (and to feed the
    # micro-batcher) behind one worker; beyond it a request would only queue, so it gets 429 at once
    # and the client (or the autoscaler) can react instead of timing out.
    max_in_flight: int = 64
    # 10 s: far above a normal answer (milliseconds) so it only fires on real overload, below common
    # client and ingress timeouts (30-60 s) so the client gets a clear 504 from us, and well inside
    # SHUTDOWN_GRACE_SECONDS so a request started just before SIGTERM ends before the grace runs out.
    request_timeout_seconds: float = 10.0
    trusted_types: tuple[str, ...] = ()
    allow_sklearn_version_mismatch: bool = False
    return_probabilities: bool = False
    log_level: str = "info"
    log_request_bodies: bool = False
    shutdown_grace_seconds: float = 20.0
    # Micro-batching (batching.py): on, because it wins or ties everywhere we measured (make bench):
    # a lone request never waits, concurrent ones share model calls (64 connections: 4-6x the
    # requests/s of one call per request on the forest and the linear model).
    batching: bool = True
    batch_max_rows: int = 256
    batch_max_wait_ms: float = 2.0
    batch_queue_rows: int = 8192
    # A DataFrame-fitted model on numeric columns is called with a plain array when it answers sample
    # rows exactly as it does the DataFrame (array_input.py): 0.43 -> 0.06 ms a call for a linear
    # model on ten columns. off keeps the DataFrame on every call.
    array_input: bool = True
    auth_tokens_file: Path | None = None
    drift_window_rows: int = 10000
    # Most bytes model.skops (a zip) may declare unpacked, checked before skops inflates it
    # (artifact_limits.py), so a zip bomb is refused with a reason instead of OOM-killing the pod on every
    # start. Unset (None), the cap follows the container's memory limit (cgroup v2 or v1): loading peaks
    # at about 3 times the unpacked size (skops reads every member twice and holds the bytes while it
    # builds the arrays: 234 MB for an 84 MB artifact) plus ~200 MiB for the libraries, so the cap is
    # (limit - 200 MiB) / 3, at least 64 MiB and at most 4 GiB (also the cap with no limit readable):
    # 104 MiB for the chart's default 512Mi pod. A model past that needs a bigger pod, or this set on
    # purpose; a value set here always wins.
    max_artifact_unpacked_bytes: int | None = None
    # `model-server fetch` (the chart's init container) and `push`. A bundle is a model plus a small
    # JSON file: 2 GiB bounds a wrong or hostile URL or object before it fills the volume, and is also the
    # most the archive may unpack to (fetch.py), so this can be lowered, not raised.
    max_archive_bytes: int = _MAX_ARCHIVE_BYTES
    # The whole transfer from a bucket, obstore's retries and our resumes included: 15 minutes moves the
    # largest archive (2 GiB) at 2.4 MB/s, and a pod that cannot fetch its model in that time should say
    # so (not ready, with the reason) rather than wait on.
    fetch_deadline_seconds: float = 900.0
    # A bucket connection silent this long is dropped and the download resumed from the last byte: 30 s
    # rides out a busy store's pauses and still notices a dead connection long before the deadline.
    fetch_stall_seconds: float = 30.0
    # A folder of credential files named like the cloud's variables (AWS_ACCESS_KEY_ID, ...,
    # buckets.CREDENTIAL_VARIABLES): the chart mounts the bucket source's Secret here with
    # `credentials.mountAs: file`, so keys never sit in the environment.
    storage_credentials_dir: Path | None = None

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
        )
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise SettingsError(f"{name.upper()} must be greater than 0, got {getattr(self, name)}")
        if self.shutdown_grace_seconds < 0 or self.batch_max_wait_ms < 0:
            raise SettingsError("SHUTDOWN_GRACE_SECONDS and BATCH_MAX_WAIT_MS must not be negative")
        if self.drift_window_rows < 0:  # 0 turns drift tracking off (drift.build_drift_monitor)
            raise SettingsError(f"DRIFT_WINDOW_ROWS must not be negative, got {self.drift_window_rows}")
        if self.max_archive_bytes > _MAX_ARCHIVE_BYTES:
            raise SettingsError(
                f"MAX_ARCHIVE_BYTES must be at most {_MAX_ARCHIVE_BYTES} (the most an archive may unpack "
                f"to), got {self.max_archive_bytes}"
            )
        if not 0 < self.port < 65536:
            raise SettingsError(f"PORT must be between 1 and 65535, got {self.port}")
        if self.log_level not in _LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {self.log_level!r}")


def _parse(name: str, type_name: str, raw: str) -> object:
    var = name.upper()
    try:
        if "bool" in type_name:
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError("expected true/false/1/0/yes/no/on/off")
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
