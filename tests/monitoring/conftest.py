"""Puts tests/monitoring on sys.path so its tests share ``monitoring_support`` (tests/conftest.py
already owns the module name ``conftest``)."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
