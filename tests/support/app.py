"""The real app and runtime in-process, over ASGI with no port: fast, and the same code a process runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from model_server.http.app import create_app
from model_server.metrics import Metrics
from model_server.settings import Settings


@contextmanager
def app_client(bundle: Path | None, **settings: Any) -> Iterator[TestClient]:
    """A TestClient for the real app; the model is loaded (or failed) when the block starts."""
    app = create_app(Settings(**settings), metrics=Metrics(), bundle_path=bundle)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert app.state.runtime.wait_loaded(60), "the model did not finish loading"
        yield client
