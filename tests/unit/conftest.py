"""In-process app fixtures of the unit tests: the real app and runtime over ASGI (support.app)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.app import app_client


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
