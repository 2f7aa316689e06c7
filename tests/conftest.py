"""Session fixtures every suite shares: the demo bundles and the Kubernetes schemas. Helpers live in the
support package (``from support.<module> import <name>``); this file only defines fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.kube import write_k8s_schemas
from support.paths import ROOT, SERVICE_SRC, TEST_MODELS


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


@pytest.fixture(scope="session")
def k8s_schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kubernetes-validate's schemas for every version the chart is checked against (support.kube)."""
    return write_k8s_schemas(tmp_path_factory.mktemp("k8s-schemas"))


@pytest.fixture(scope="session")
def slow_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A regressor (features x0, x1) whose every prediction after warm-up takes 2 seconds. Serving it
    needs PYTHONPATH=tests/support/models and TRUSTED_TYPES=slowmodel.SlowRegressor."""
    import sys

    import numpy as np
    from model_server.bundle.package import package

    sys.path.insert(0, str(TEST_MODELS))
    try:
        from slowmodel import SlowRegressor
    finally:
        sys.path.remove(str(TEST_MODELS))
    X = np.arange(20.0).reshape(10, 2)
    model = SlowRegressor(delay=2.0).fit(X, np.arange(10.0))
    return package(model, X, name="slow", version="1.0.0", out=tmp_path_factory.mktemp("slow") / "slow")
