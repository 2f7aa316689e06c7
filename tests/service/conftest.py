"""In-process app fixtures: the real app and runtime over ASGI, with no port (fast)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from model_server.http.app import create_app
from model_server.metrics import Metrics
from model_server.settings import Settings

SLOW_MODEL_DIR = Path(__file__).resolve().parent / "models"


@contextmanager
def app_client(bundle: Path | None, **settings: Any) -> Iterator[TestClient]:
    """A TestClient for the real app; the model is loaded (or failed) when the block starts."""
    app = create_app(Settings(**settings), metrics=Metrics(), bundle_path=bundle)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert app.state.runtime.wait_loaded(60), "the model did not finish loading"
        yield client


@pytest.fixture(scope="module")
def iris(iris_bundle: Path) -> Iterator[TestClient]:
    with app_client(iris_bundle) as client:
        yield client


@pytest.fixture(scope="module")
def sales(sales_bundle: Path) -> Iterator[TestClient]:
    with app_client(sales_bundle) as client:
        yield client


@pytest.fixture
def make_client() -> Callable[..., Any]:
    return app_client
