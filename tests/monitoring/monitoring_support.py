"""Paths and loaders shared by the monitoring tests (the generated files are what ships)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "charts" / "model-server" / "files"
RULES_FILE = FILES / "prometheus-rules.yaml"
DASHBOARDS = sorted((FILES / "dashboards").glob("*.json"))
MONITORING = ROOT / "monitoring"
ADAPTER_VALUES = MONITORING / "values" / "prometheus-adapter.yaml"
KPS_VALUES = MONITORING / "values" / "kube-prometheus-stack.yaml"
RUNBOOK = MONITORING / "RUNBOOK.md"


def tool(name: str) -> str:
    """A Prometheus binary from the Debian package; a missing one fails (never skips)."""
    search = os.pathsep.join([str(ROOT / ".tools" / "bin"), "/usr/bin", os.environ.get("PATH", "")])
    path = shutil.which(name, path=search)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make tools` (Debian package prometheus)")
    return path


def load_rules() -> dict:
    return yaml.safe_load(RULES_FILE.read_text())


def load_dashboards() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in DASHBOARDS}


def all_panels(board: dict) -> list[dict]:
    out = []
    for p in board["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows keep their panels inside
    return out


def mixin_path() -> None:
    """Make monitoring/mixin importable, as monitoring/generate.py does for itself."""
    if str(MONITORING) not in sys.path:
        sys.path.insert(0, str(MONITORING))
