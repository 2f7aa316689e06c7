"""Helpers of the GitOps tests: the Argo CD objects as Argo CD renders them, and the tools to check them.

The app-of-apps chart (argocd/apps) is rendered the way Argo CD renders it for the root Application:
`helm template` with the root Application's helm parameters, after substituting Argo CD's build
environment ($ARGOCD_APP_SOURCE_REPO_URL, ...) from the root Application's own source. The
ApplicationSet in that output is then expanded over this repository's files (argocd_emulator.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"
CHART = ROOT / "charts" / "model-server"
CRD_SCHEMAS = ROOT / "tests" / "schemas" / "crds"
ENVIRONMENTS = ROOT / "environments"
ROOT_APP = ROOT / "argocd" / "bootstrap" / "root-application.yaml"
K8S_SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


def tool(name: str) -> str:
    path = TOOLS_BIN / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make tools`")
    return str(path)


def helm_env() -> dict[str, str]:
    helm_home = ROOT / ".tools" / "helm"
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(helm_home),
        "HELM_CACHE_HOME": str(helm_home / "cache"),
        "HELM_CONFIG_HOME": str(helm_home / "config"),
        "HELM_DATA_HOME": str(helm_home / "data"),
    }


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


# ---------------------------------------------------------------------------------------------------
# Kubernetes versions and schemas


def kube_versions() -> list[str]:
    """The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with schemas."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    low = re.search(r">=\s*v?([0-9]+\.[0-9]+(?:\.[0-9]+)?)", chart["kubeVersion"])
    assert low, f"no lower bound in kubeVersion {chart['kubeVersion']!r}"
    oldest = low.group(1) if low.group(1).count(".") == 2 else low.group(1) + ".0"
    available = sorted(
        (tuple(int(x) for x in d.name[1:].split("-")[0].split(".")), d.name[1:].split("-")[0])
        for d in K8S_SCHEMAS.glob("v*-local-strict")
    )
    return [oldest, available[-1][1]]


def k8s_schemas_into(out: Path) -> Path:
    """kubernetes-validate's strict schemas, made local for kubeconform, written under `out`.

    Each file carries `$id: https://kubernetes.io/api/...` and `$ref: /api/_definitions.json#...`, so a
    validator resolving refs would fetch kubernetes.io; without the $id and with relative refs they
    resolve next to the file.
    """
    for version in kube_versions():
        src = K8S_SCHEMAS / f"v{version}-local-strict"
        assert src.is_dir(), f"kubernetes-validate has no schemas for {version}"
        dst = out / src.name
        dst.mkdir()
        for f in src.iterdir():
            data = json.loads(f.read_text().replace('"/api/_definitions.json#', '"_definitions.json#'))
            if isinstance(data, dict):
                data.pop("$id", None)
            (dst / f.name).write_text(json.dumps(data))
    return out


def kubeconform(text: str | list[Path], version: str, schema_dir: Path) -> subprocess.CompletedProcess[str]:
    """Strict validation: built-in kinds from kubernetes-validate, custom resources from tests/schemas.

    `text` is one YAML stream (read from stdin), or files, whose names then appear in the messages."""
    files = ["-"] if isinstance(text, str) else [str(f) for f in text]
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
        input=text if isinstance(text, str) else None,
    )


# ---------------------------------------------------------------------------------------------------
# The Argo CD objects


def root_application() -> dict[str, Any]:
    return yaml.safe_load(ROOT_APP.read_text())


def build_env(app: dict[str, Any]) -> dict[str, str]:
    """Argo CD's build environment for an Application (user-guide/build-environment.md)."""
    source = app["spec"]["source"]
    return {
        "ARGOCD_APP_NAME": app["metadata"]["name"],
        "ARGOCD_APP_NAMESPACE": app["spec"]["destination"]["namespace"],
        "ARGOCD_APP_SOURCE_PATH": source["path"],
        "ARGOCD_APP_SOURCE_REPO_URL": source["repoURL"],
        "ARGOCD_APP_SOURCE_TARGET_REVISION": source["targetRevision"],
    }


def substitute(value: str, env: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        assert name in env, f"${name} is not in Argo CD's build environment"
        return env[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, value)


def render_root(app: dict[str, Any]) -> str:
    """What Argo CD renders for the root Application: helm template of its path with its parameters."""
    source = app["spec"]["source"]
    env = build_env(app)
    cmd = [
        tool("helm"),
        "template",
        source["helm"].get("releaseName", app["metadata"]["name"]),
        str(ROOT / source["path"]),
        "--namespace",
        app["spec"]["destination"]["namespace"],
    ]
    for param in source["helm"].get("parameters", []):
        cmd += ["--set", f"{param['name']}={substitute(param['value'], env)}"]
    done = run(cmd, env=helm_env())
    assert done.returncode == 0, done.stderr
    return done.stdout


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def environment_listing() -> dict[str, list[str]]:
    """{environment: [model file stems]} straight from the filesystem."""
    return {
        p.parent.name: sorted(m.stem for m in (p.parent / "models").glob("*.yaml"))
        for p in sorted(ENVIRONMENTS.glob("*/env.yaml"))
    }


def value_files(app: dict[str, Any]) -> list[Path]:
    """An Application's Helm value files as paths in this repository (relative to the chart path)."""
    source = app["spec"]["source"]
    return [(ROOT / source["path"] / f).resolve() for f in source["helm"]["valueFiles"]]


def helm_template(app: dict[str, Any], kube_version: str) -> subprocess.CompletedProcess[str]:
    """What Argo CD's repo server renders for a generated Application (path-based Helm source)."""
    source = app["spec"]["source"]
    cmd = [
        tool("helm"),
        "template",
        source["helm"]["releaseName"],
        str(ROOT / source["path"]),
        "--namespace",
        app["spec"]["destination"]["namespace"],
        "--kube-version",
        kube_version,
    ]
    for f in value_files(app):
        cmd += ["--values", str(f)]
    return run(cmd, env=helm_env())
