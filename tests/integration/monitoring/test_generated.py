"""The committed dashboards, rules and adapter values are exactly what monitoring/mixin/ produces."""

from __future__ import annotations

import subprocess
import sys

from support.monitoring import DASHBOARDS, FILES, RULES_FILE
from support.paths import MONITORING, ROOT


def test_generated_files_are_fresh():
    result = subprocess.run(
        [sys.executable, str(MONITORING / "generate.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"run `make dashboards` and commit the result:\n{result.stderr}"


def test_the_platform_chart_gets_both_dashboards_and_one_rule_file():
    assert [p.name for p in DASHBOARDS] == ["model-server-model.json", "model-server-platform.json"]
    assert RULES_FILE.exists()
    assert sorted(p.name for p in FILES.iterdir()) == ["dashboards", "prometheus-rules.yaml"]
