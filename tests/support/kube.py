"""The Kubernetes versions the chart claims, the API schemas kubernetes-validate ships for them, and
kubeconform against both (built-in kinds) and tests/schemas/crds (custom resources)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import kubernetes_validate
import yaml

from .paths import CHART, CRD_SCHEMAS
from .tools import run, tool

K8S_SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


def kube_version_floor() -> str:
    """The lowest Kubernetes version Chart.yaml's kubeVersion claims (">=1.30.0-0" -> "1.30.0")."""
    claim = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    m = re.fullmatch(r">=\s*(\d+\.\d+\.\d+)(-0)?", claim.strip())
    assert m, f"the tests expect kubeVersion of the form '>=X.Y.Z-0', got {claim!r}"
    return m[1]


def newest_schema_version() -> str:
    versions = [p.name[1:].removesuffix("-local-strict") for p in K8S_SCHEMAS.glob("v*-local-strict")]
    return max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


def kube_versions() -> list[str]:
    """The versions every render is checked against: the lowest the chart claims, the newest
    kubernetes-validate has schemas for, and one in between."""
    low, high = kube_version_floor(), newest_schema_version()
    lo_minor, hi_minor = int(low.split(".")[1]), int(high.split(".")[1])
    assert lo_minor < hi_minor, f"kubernetes-validate has no schemas newer than the chart's floor {low}"
    return [low, f"1.{(lo_minor + hi_minor) // 2}.0", high]


def write_k8s_schemas(out: Path) -> Path:
    """kubernetes-validate's strict schemas for every version of kube_versions(), made usable by
    kubeconform offline, under ``out/v<version>-local-strict/``.

    Each file has `$id: https://kubernetes.io/api/...` and refs `/api/_definitions.json#...`, which
    kubeconform would try to fetch from kubernetes.io; without the $id and with relative refs they
    resolve next to the file.
    """
    for version in kube_versions():
        src = K8S_SCHEMAS / f"v{version}-local-strict"
        assert src.is_dir(), f"kubernetes-validate has no schemas for Kubernetes {version}"
        dst = out / src.name
        dst.mkdir(parents=True)
        for f in src.glob("*.json"):
            data = json.loads(f.read_text().replace('"/api/_definitions.json#', '"_definitions.json#'))
            if isinstance(data, dict):
                data.pop("$id", None)
            (dst / f.name).write_text(json.dumps(data))
    return out


def kubeconform(
    inputs: str | Sequence[Path], version: str, schema_dir: Path
) -> subprocess.CompletedProcess[str]:
    """kubeconform -strict: built-in kinds against that version's schemas (write_k8s_schemas), custom
    resources against tests/schemas/crds. ``inputs``: one YAML stream (stdin), or files and folders,
    whose names then appear in the messages."""
    files = ["-"] if isinstance(inputs, str) else [str(f) for f in inputs]
    return run(
        [
            tool("kubeconform"),
            "-strict",
            "-summary",
            "-kubernetes-version",
            version,
            "-schema-location",
            f"{schema_dir}/{{{{ .NormalizedKubernetesVersion }}}}-local-strict/"
            "{{ .ResourceKind }}{{ .KindSuffix }}.json",
            "-schema-location",
            f"{CRD_SCHEMAS}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
            *files,
        ],
        check=False,
        input=inputs if isinstance(inputs, str) else None,
    )
