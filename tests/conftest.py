"""Shared by every area's tests: repository paths, the pinned tools' environment, the demo bundles.

The real server process helper is tests/serverproc.py (``from serverproc import start_server``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# tests/e2e needs a cluster: `make e2e` runs it by path (`pytest tests/e2e`); a plain `pytest` (make test)
# does not collect it.
collect_ignore = ["e2e"]

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools"
SERVICE_SRC = ROOT / "service" / "model_server"


def tools_env() -> dict[str, str]:
    """os.environ plus the PATH and HELM_* variables that find the tools `make tools` installed."""
    env = dict(os.environ)
    env["PATH"] = f"{TOOLS / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    for name, sub in (
        ("HELM_PLUGINS", "plugins"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ):
        env[name] = str(TOOLS / "helm" / sub)
    return env


def _fresh(bundles: Path) -> bool:
    """build/bundles is usable when `make demo` built it after the last change to the server code."""
    metas = [bundles / name / "metadata.json" for name in ("iris-classifier", "sales-regressor")]
    if not all(m.exists() for m in metas):
        return False
    built = min(m.stat().st_mtime for m in metas)
    return all(p.stat().st_mtime <= built for p in SERVICE_SRC.rglob("*.py"))


@pytest.fixture(scope="session")
def demo_bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the demo bundles iris-classifier/ and sales-regressor/.

    Uses build/bundles when `make demo` is up to date, else builds them (about 6 s) into a temp dir.
    """
    built = ROOT / "build" / "bundles"
    if _fresh(built):
        return built
    from model_server.demo import build_demo

    out = tmp_path_factory.mktemp("bundles")
    build_demo(out)
    return out


@pytest.fixture(scope="session")
def iris_bundle(demo_bundles: Path) -> Path:
    return demo_bundles / "iris-classifier"


@pytest.fixture(scope="session")
def sales_bundle(demo_bundles: Path) -> Path:
    return demo_bundles / "sales-regressor"
