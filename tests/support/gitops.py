"""Helpers of the offline GitOps tests (tests/integration/gitops): the Argo CD objects of argocd/apps,
and the model releases environments/ declares.

The app-of-apps chart (argocd/apps) is rendered the way Argo CD renders it for the root Application:
`helm template` with the root Application's helm parameters, after substituting Argo CD's build
environment ($ARGOCD_APP_SOURCE_REPO_URL, ...) from the root Application's own source. What Argo CD's
ApplicationSet controller makes of it is tested on the cluster (tests/e2e/test_gitops.py); offline, each
release is rendered with the chart and its three values files, as the ApplicationSet's template
layers them.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
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


def render_root(app: dict[str, Any], extra: list[str] | None = None) -> str:
    """What Argo CD renders for the root Application: helm template of its path with its parameters
    (and ``extra`` helm arguments after them)."""
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
        extra=params + (extra or []),
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


@dataclass(frozen=True)
class Release:
    """One model in one environment: environments/<env>/models/<model>.yaml beside <env>/env.yaml,
    the pair the ApplicationSet's matrix of git generators turns into the Application <env>-<model>."""

    env: str
    model_file: Path

    @property
    def name(self) -> str:
        return f"{self.env}-{self.model_file.stem}"

    @property
    def namespace(self) -> str:
        return str(
            yaml.safe_load((ENVIRONMENTS / self.env / "env.yaml").read_text())["destination"]["namespace"]
        )

    @property
    def model(self) -> dict[str, Any]:
        return dict(yaml.safe_load(self.model_file.read_text())["model"])

    @property
    def value_files(self) -> list[Path]:
        """The values files in the ApplicationSet's order (later ones win)."""
        return [ENVIRONMENTS / "common.yaml", ENVIRONMENTS / self.env / "values.yaml", self.model_file]


def releases() -> list[Release]:
    return [
        Release(env, ENVIRONMENTS / env / "models" / f"{model}.yaml")
        for env, models in environment_listing().items()
        for model in models
    ]


def render_release(release: Release, kube_version: str) -> subprocess.CompletedProcess[str]:
    """What Argo CD's repo server renders for the release's Application (path-based Helm source)."""
    cmd = helm_template_args(
        release.value_files,
        chart=ROOT / "charts" / "model-server",
        release=release.model["name"],
        namespace=release.namespace,
        kube_version=kube_version,
    )
    return run(cmd, check=False)
