"""Helpers of the GitOps tests: the Argo CD objects as Argo CD renders them, and the tools to check them.

The app-of-apps chart (argocd/apps) is rendered the way Argo CD renders it for the root Application:
`helm template` with the root Application's helm parameters, after substituting Argo CD's build
environment ($ARGOCD_APP_SOURCE_REPO_URL, ...) from the root Application's own source. The
ApplicationSet in that output is then expanded over this repository's files (argocd_emulator.py).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .helm import helm_template_args
from .paths import ENVIRONMENTS, ROOT
from .tools import run

ROOT_APP = ROOT / "argocd" / "bootstrap" / "root-application.yaml"


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
    params = [
        f"--set={param['name']}={substitute(param['value'], env)}"
        for param in source["helm"].get("parameters", [])
    ]
    cmd = helm_template_args(
        chart=ROOT / source["path"],
        release=source["helm"].get("releaseName", app["metadata"]["name"]),
        namespace=app["spec"]["destination"]["namespace"],
        kube_version=None,
        extra=params,
    )
    return run(cmd).stdout


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


def render_application(app: dict[str, Any], kube_version: str) -> subprocess.CompletedProcess[str]:
    """What Argo CD's repo server renders for a generated Application (path-based Helm source)."""
    source = app["spec"]["source"]
    cmd = helm_template_args(
        value_files(app),
        chart=ROOT / source["path"],
        release=source["helm"]["releaseName"],
        namespace=app["spec"]["destination"]["namespace"],
        kube_version=kube_version,
    )
    return run(cmd, check=False)
