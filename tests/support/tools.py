"""The tools `make tools` installs (.tools/ and Debian packages), found and run the same way by every
suite. A missing tool is a failure that says to run `make tools`, never a skip."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

import pytest

from .paths import TOOLS


def tools_env() -> dict[str, str]:
    """os.environ plus the PATH and HELM_* variables that find the tools `make tools` installed."""
    env = dict(os.environ)
    env["PATH"] = f"{TOOLS / 'bin'}{os.pathsep}{env.get('PATH', '')}{os.pathsep}/usr/bin"
    for name, sub in (
        ("HELM_PLUGINS", "plugins"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ):
        env[name] = str(TOOLS / "helm" / sub)
    return env


def tool(name: str) -> str:
    """The path of a pinned tool (.tools/bin first, then the Debian packages)."""
    path = shutil.which(name, path=tools_env()["PATH"])
    if path is None:
        pytest.fail(f"{name} is not installed: run `make tools`", pytrace=False)
    return path


def run(args: Sequence[str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a tool in the tools environment; with ``check`` a non-zero exit fails the test with its output."""
    env = kw.pop("env", None) or tools_env()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, **kw)
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    return proc
