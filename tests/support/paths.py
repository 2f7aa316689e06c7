"""Where things are in the repository."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
SERVICE_SRC = ROOT / "service" / "model_server"
CHART = ROOT / "charts" / "model-server"
PLATFORM_CHART = ROOT / "charts" / "platform-monitoring"
MONITORING = ROOT / "monitoring"
ENVIRONMENTS = ROOT / "environments"
# JSON schemas of the Argo CD and Prometheus Operator custom resources (see the README there).
CRD_SCHEMAS = ROOT / "tests" / "schemas" / "crds"
# Modules that test bundles' models import (the server process gets this folder on PYTHONPATH).
TEST_MODELS = ROOT / "tests" / "support" / "models"
