"""Helpers of the chart tests (importable as ``chart.support``): run the pinned tools, render the chart,
read the Kubernetes schemas kubernetes-validate ships. What the rendered chart does on a real cluster is
tested by tests/e2e.

A missing tool is a failure that says to run `make tools`, never a skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import ROOT, tools_env

CHART = ROOT / "charts" / "model-server"
# Every values file a user or CI installs with: the scenarios kind installs, and the documented examples.
VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml")) + sorted(
    (CHART / "examples").glob("*-values.yaml")
)
# A version inside the chart's kubeVersion range, for renders that do not test the range itself.
KUBE_VERSION = "1.33.0"


def tool(name: str) -> str:
    path = shutil.which(name, path=tools_env()["PATH"])
    if path is None:
        pytest.fail(f"{name} is not installed: run `make tools`", pytrace=False)
    return path


def run(args: Sequence[str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = kw.pop("env", None) or tools_env()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, **kw)
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    return proc


def helm_template_args(
    values_files: Iterable[Path] = (),
    sets: dict[str, str] | None = None,
    kube_version: str = KUBE_VERSION,
    chart: Path = CHART,
    release: str = "iris",
    namespace: str = "models",
) -> list[str]:
    args = [
        tool("helm"),
        "template",
        release,
        str(chart),
        "--namespace",
        namespace,
        "--kube-version",
        kube_version,
    ]
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
) -> list[dict[str, Any]]:
    """`helm template` (hooks included) -> the list of rendered objects. ``sets`` values are JSON."""
    out = run(helm_template_args(values_files, sets, kube_version, chart)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[d['kind'] for d in docs]}"
    return found[0]


def kube_version_floor() -> str:
    """The lowest Kubernetes version Chart.yaml's kubeVersion claims (">=1.30.0-0" -> "1.30.0")."""
    claim = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    m = re.fullmatch(r">=\s*(\d+\.\d+\.\d+)(-0)?", claim.strip())
    assert m, f"tests/chart expects kubeVersion of the form '>=X.Y.Z-0', got {claim!r}"
    return m[1]


K8S_SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


def newest_schema_version() -> str:
    versions = [p.name[1:].removesuffix("-local-strict") for p in K8S_SCHEMAS.glob("v*-local-strict")]
    return max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


def kube_versions() -> list[str]:
    """The lowest version the chart claims, the newest kubernetes-validate has schemas for, and one
    in between."""
    low, high = kube_version_floor(), newest_schema_version()
    lo_minor, hi_minor = int(low.split(".")[1]), int(high.split(".")[1])
    assert lo_minor < hi_minor, f"kubernetes-validate has no schemas newer than the chart's floor {low}"
    return [low, f"1.{(lo_minor + hi_minor) // 2}.0", high]


def write_local_schemas(version: str, out: Path) -> Path:
    """kubernetes-validate's strict schemas for one version, made usable by kubeconform offline.

    Each file has `$id: https://kubernetes.io/api/...` and refs `/api/_definitions.json#...`, which
    kubeconform would try to fetch from kubernetes.io; without the $id and with relative refs they
    resolve next to the file. Written as `out/v<version>/<kind>-<group>-<apiversion>.json`.
    """
    src = K8S_SCHEMAS / f"v{version}-local-strict"
    assert src.is_dir(), f"kubernetes-validate has no schemas for Kubernetes {version}"
    dst = out / f"v{version}"
    dst.mkdir(parents=True)
    for f in src.glob("*.json"):
        data = json.loads(f.read_text().replace('"/api/_definitions.json#', '"_definitions.json#'))
        data.pop("$id", None)
        (dst / f.name).write_text(json.dumps(data))
    return out
