"""Paths and loaders shared by the monitoring tests (the generated files are what ships)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from .helm import render
from .paths import CHART, MONITORING, PLATFORM_CHART

FILES = PLATFORM_CHART / "files"
RULES_FILE = FILES / "prometheus-rules.yaml"
DASHBOARDS = sorted((FILES / "dashboards").glob("*.json"))
ADAPTER_VALUES = MONITORING / "values" / "prometheus-adapter.yaml"
KPS_VALUES = MONITORING / "values" / "kube-prometheus-stack.yaml"
RUNBOOK = MONITORING / "RUNBOOK.md"


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


def helm_template(*values_files: Path, chart: Path = CHART, sets: dict[str, str] | None = None) -> list[dict]:
    """A chart (default: the model chart) rendered with these values files and ``sets`` (JSON values),
    as the monitoring tests read it."""
    return render(*values_files, sets=sets, kube_version="1.31.0", chart=chart, release="t", namespace=None)


# PromQL words that look like names but are not metrics.
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (adapter <<templates>> and Grafana $variables allowed)."""
    e = re.sub(r"<<[^>]*>>", "", expr)  # adapter templates
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', e)  # string literals (regexes, label_replace arguments)
    e = re.sub(r"\{[^{}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # range and subquery windows
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)  # label lists
    e = re.sub(r"\$\w+", " ", e)  # Grafana variables
    e = re.sub(r"(?<![\w:])\d+(\.\d+)?(e[+-]?\d+)?\b", " ", e)  # numbers
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        rest = e[m.end() :].lstrip()
        if rest.startswith("(") or m.group(0).lower() in KEYWORDS:
            continue  # a function call or an operator keyword
        names.add(m.group(0))
    return names
