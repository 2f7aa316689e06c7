"""Paths and loaders shared by the monitoring tests (the generated files are what ships)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "model-server"
PLATFORM_CHART = ROOT / "charts" / "platform-monitoring"
FILES = PLATFORM_CHART / "files"
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


def alerts() -> list[dict]:
    return [r for g in load_rules()["groups"] for r in g["rules"] if "alert" in r]


def recording_rules() -> list[dict]:
    return [r for g in load_rules()["groups"] for r in g["rules"] if "record" in r]


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL) for every panel target of every dashboard."""
    out = []
    for board in load_dashboards().values():
        for panel in all_panels(board):
            for target in panel.get("targets", []):
                out.append((board["uid"], panel["title"], target["expr"]))
    return out


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, variable name, query) of every query variable."""
    return [
        (b["uid"], v["name"], v["query"])
        for b in load_dashboards().values()
        for v in b["templating"]["list"]
        if v["type"] == "query"
    ]


def helm_template(*values_files: Path, chart: Path = CHART, sets: tuple[str, ...] = ()) -> list[dict]:
    """A chart (default: the model chart) rendered by the pinned helm (make tools) with these values
    files and `--set` arguments, as manifests."""
    import subprocess

    tools = ROOT / ".tools"
    env = dict(os.environ, PATH=f"{tools / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    for name, sub in (
        ("HELM_PLUGINS", "plugins"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ):
        env[name] = str(tools / "helm" / sub)
    args = [tool("helm"), "template", "t", str(chart), "--kube-version", "1.31.0"]
    for values_file in values_files:
        args += ["-f", str(values_file)]
    for assignment in sets:
        args += ["--set", assignment]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]
