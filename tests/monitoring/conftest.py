"""Makes the helper modules of tests/monitoring importable (``monitoring_support``,
``prometheus_harness``). Appended, not prepended: ``import conftest`` elsewhere must keep finding
tests/conftest.py first."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.append(HERE)
