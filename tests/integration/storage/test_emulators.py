"""The storage servers keep to this machine: every port on 127.0.0.1, no usage reports sent out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support import emulators

pytestmark = pytest.mark.slow


def _listening(pid: int) -> list[str]:
    """Local addresses of the TCP sockets ``pid`` listens on (ss, from iproute2)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]


def test_every_server_listens_on_loopback_only(
    s3: emulators.Emulator, azure: emulators.Emulator, gcs: emulators.Emulator
) -> None:
    for emu in (s3, azure, gcs):
        addresses = _listening(emu.proc.pid)
        assert addresses, f"{emu.name}: no listening socket found"
        assert all(a.startswith("127.0.0.1:") for a in addresses), f"{emu.name} listens on {addresses}"


def test_azurite_buffered_no_telemetry(azure: emulators.Emulator) -> None:
    """Started with --disableTelemetry; its telemetry client would buffer unsent reports in TMPDIR."""
    workdir = Path(azure.log).parent
    assert list(workdir.glob("Microsoft-AzureMonitor-*")) == []
