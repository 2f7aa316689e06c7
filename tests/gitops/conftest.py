"""Session fixtures of the GitOps tests (helpers live in support.py, importable as gitops.support)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gitops.argocd_emulator import expand
from gitops.support import ROOT, by_kind, k8s_schemas_into, load_all, render_root, root_application


@pytest.fixture(scope="session")
def k8s_schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return k8s_schemas_into(tmp_path_factory.mktemp("k8s-schemas"))


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
