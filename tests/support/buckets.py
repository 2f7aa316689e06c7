"""One bucket of each real server, as the tests address it: URIs, CLI options, credentials, raw writes."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import obstore

from . import emulators
from .paths import ROOT

MODEL_SERVER = ROOT / ".venv" / "bin" / "model-server"
_CLOUD_PREFIXES = ("AWS_", "GOOGLE_", "AZURE_", "AZURITE_", "STORAGE_", "FETCH_", "MAX_ARCHIVE")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    """`model-server ARGS` with only the cloud variables given in ``env`` (and no HTTP proxies)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_CLOUD_PREFIXES) and not k.lower().endswith("_proxy")
    }
    proc = subprocess.run(
        [str(MODEL_SERVER), *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Target:
    emu: emulators.Emulator
    # Options every `model-server fetch/push` needs to find this server.
    options: list[str]
    # The credentials of an identity allowed to read and write `models` (empty: none needed).
    env: dict[str, str]

    @property
    def provider(self) -> str:
        return self.emu.name

    def uri(self, key: str, bucket: str = "models") -> str:
        scheme = {"s3": "s3", "gcs": "gs", "azure": "az"}[self.provider]
        return f"{scheme}://{bucket}/{key}"

    def put(self, key: str, data: bytes, bucket: str = "models") -> None:
        """Write raw bytes (a hostile archive, say) with the server's own API or obstore."""
        if self.provider == "gcs":
            emulators.gcs_upload(self.emu, bucket, key, data)
            return
        store = (
            emulators.s3_store(self.emu, bucket)
            if self.provider == "s3"
            else emulators.azure_store(self.emu, bucket)
        )
        obstore.put(store, key, data)

    def get(self, key: str, bucket: str = "models") -> bytes:
        store = {
            "s3": emulators.s3_store,
            "azure": emulators.azure_store,
            "gcs": emulators.gcs_store,
        }[self.provider](self.emu, bucket)
        return bytes(obstore.get(store, key).bytes())


def target(emu: emulators.Emulator) -> Target:
    # fake-gcs-server checks no credentials: reads go unsigned (with a key, obstore would fetch an OAuth
    # token from Google, which these tests must never reach).
    extra = ["--anonymous"] if emu.name == "gcs" else []
    return Target(emu, [*emu.cli_options, *extra], dict(emu.admin_env))


# Every store the suite runs against.
ALL = ["s3", "azure", "gcs"]


def assert_refused(result: CliResult, *phrases: str) -> None:
    assert result.code == 1, f"should fail:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"the refusal should be one line:\n{result.stderr}"
    assert lines[0].startswith("model-server fetch: "), result.stderr
    for phrase in phrases:
        assert phrase.lower() in lines[0].lower(), result.stderr
