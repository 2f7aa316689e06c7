"""The reliability suite: real server processes under faults, overload and hostile input.

Helpers shared by its modules (hostile.py: hostile bundles and archives) live next to the tests;
the load generator and process sampler shared with `make soak` live in service/soak/.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# Appended, not prepended: tests/ (pythonpath) must keep winning for `conftest` and shared helpers.
for path in (HERE, ROOT / "service" / "soak"):
    if str(path) not in sys.path:
        sys.path.append(str(path))
