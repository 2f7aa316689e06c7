"""The chart rendered by the pinned helm: `helm template` is built here and nowhere else."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .paths import CHART
from .tools import run, tool

# Every values file a user or CI installs with: the scenarios kind installs, and the documented examples.
VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml")) + sorted(
    (CHART / "examples").glob("*-values.yaml")
)
# A version inside the chart's kubeVersion range, for renders that do not test the range itself.
KUBE_VERSION = "1.33.0"


def helm_template_args(
    values_files: Iterable[Path] = (),
    sets: dict[str, str] | None = None,
    kube_version: str | None = KUBE_VERSION,
    chart: Path = CHART,
    release: str = "iris",
    namespace: str | None = "models",
    extra: Iterable[str] = (),
) -> list[str]:
    """`helm template` of ``chart``; ``sets`` values are JSON (--set-json); ``kube_version`` None: helm's
    own default; ``extra``: further arguments as they are."""
    args = [tool("helm"), "template", release, str(chart)]
    if kube_version is not None:
        args += ["--kube-version", kube_version]
    if namespace is not None:
        args += ["--namespace", namespace]
    args += list(extra)
    for f in values_files:
        args += ["-f", str(f)]
    for key, value in (sets or {}).items():
        args += ["--set-json", f"{key}={value}"]
    return args


def render(
    *values_files: Path,
    sets: dict[str, str] | None = None,
    kube_version: str = KUBE_VERSION,
    chart: Path = CHART,
    release: str = "iris",
    namespace: str | None = "models",
) -> list[dict[str, Any]]:
    """`helm template` (hooks included) -> the list of rendered objects; a failed render fails the test."""
    out = run(helm_template_args(values_files, sets, kube_version, chart, release, namespace)).stdout
    return load_all(out)


def load_all(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[d['kind'] for d in docs]}"
    return found[0]
