"""Session fixtures of the offline GitOps tests (helpers: support.gitops)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.gitops import Release, by_kind, releases, render_release, render_root, root_application
from support.helm import load_all
from support.kube import kube_versions


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
def all_releases() -> list[Release]:
    found = releases()
    assert found, "environments/ declares no release"
    return found


@pytest.fixture(scope="session")
def rendered_releases(
    all_releases: list[Release], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Path]]:
    """{kube version: {Application name: file with its `helm template` output}}, rendered once.

    A failed render is a test failure here, naming the release and helm's message."""
    out: dict[str, dict[str, Path]] = {}
    for version in kube_versions():
        folder = tmp_path_factory.mktemp(f"rendered-{version}")
        out[version] = {}
        for release in all_releases:
            done = render_release(release, version)
            if done.returncode != 0:
                pytest.fail(f"{release.name} does not render for Kubernetes {version}: {done.stderr}")
            path = folder / f"{release.name}.yaml"
            path.write_text(done.stdout)
            out[version][release.name] = path
    return out
