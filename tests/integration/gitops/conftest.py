"""Session fixtures of the GitOps tests (helpers: support.gitops and support.argocd_emulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.argocd_emulator import expand
from support.gitops import by_kind, render_application, render_root, root_application
from support.helm import load_all
from support.kube import kube_versions
from support.paths import ROOT


@pytest.fixture(scope="session")
def root_app() -> dict[str, Any]:
    return root_application()


@pytest.fixture(scope="session")
def platform_text(root_app: dict[str, Any]) -> str:
    """argocd/apps as Argo CD renders it for the root Application."""
    return render_root(root_app)


@pytest.fixture(scope="session")
def platform(platform_text: str) -> list[dict[str, Any]]:
    return load_all(platform_text)


@pytest.fixture(scope="session")
def models_appset(platform: list[dict[str, Any]]) -> dict[str, Any]:
    sets = by_kind(platform, "ApplicationSet")
    assert [s["metadata"]["name"] for s in sets] == ["models"]
    return sets[0]


@pytest.fixture(scope="session")
def generated_apps(models_appset: dict[str, Any]) -> list[dict[str, Any]]:
    """The Applications the ApplicationSet controller would create from this checkout's files."""
    return expand(models_appset, ROOT)


@pytest.fixture(scope="session")
def rendered_apps(
    generated_apps: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Path]]:
    """{kube version: {Application name: file with its `helm template` output}}, rendered once.

    A failed render is a test failure here, naming the Application and helm's message."""
    out: dict[str, dict[str, Path]] = {}
    for version in kube_versions():
        folder = tmp_path_factory.mktemp(f"rendered-{version}")
        out[version] = {}
        for app in generated_apps:
            done = render_application(app, version)
            name = app["metadata"]["name"]
            if done.returncode != 0:
                pytest.fail(f"{name} does not render for Kubernetes {version}: {done.stderr}")
            path = folder / f"{name}.yaml"
            path.write_text(done.stdout)
            out[version][name] = path
    return out
