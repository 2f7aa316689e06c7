"""Session fixtures of the chart tests (helpers live in support.py, importable as chart.support)."""

from __future__ import annotations

from pathlib import Path

import pytest
from chart.support import kube_versions, write_local_schemas


@pytest.fixture(scope="session")
def k8s_schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("k8s-schemas")
    for version in kube_versions():
        write_local_schemas(version, out)
    return out
