"""The rule file: promtool accepts it, every alert is unit-tested both ways, and its runbook exists."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from support.monitoring import KPS_VALUES, RULES_FILE, RUNBOOK, alerts
from support.paths import MONITORING
from support.tools import tool

PROMTOOL_TESTS = sorted((MONITORING / "tests").glob("*.test.yaml"))


def test_promtool_accepts_the_rule_file():
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(RULES_FILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(1 for _ in _all_rules())} rules found" in result.stdout


def _all_rules():
    for group in yaml.safe_load(RULES_FILE.read_text())["groups"]:
        yield from group["rules"]


@pytest.mark.parametrize("test_file", PROMTOOL_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(test_file):
    result = subprocess.run(
        [tool("promtool"), "test", "rules", test_file.name],
        cwd=test_file.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _alert_cases() -> dict[str, dict[str, int]]:
    cases: dict[str, dict[str, int]] = {}
    for path in PROMTOOL_TESTS:
        doc = yaml.safe_load(path.read_text())
        assert doc["rule_files"] == ["../../charts/platform-monitoring/files/prometheus-rules.yaml"], path
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                kind = "firing" if case.get("exp_alerts") else "quiet"
                counts = cases.setdefault(case["alertname"], {"firing": 0, "quiet": 0})
                counts[kind] += 1
    return cases


def test_every_alert_is_tested_firing_and_quiet():
    cases = _alert_cases()
    names = [a["alert"] for a in alerts()]
    # the list: SLO burn (availability, latency; page and ticket), not ready, no traffic,
    # drift, restarts, HPA at max
    assert sorted(names) == sorted(
        [
            "ModelServerAvailabilityBudgetBurnFast",
            "ModelServerAvailabilityBudgetBurnSlow",
            "ModelServerLatencyBudgetBurnFast",
            "ModelServerLatencyBudgetBurnSlow",
            "ModelServerModelUnavailable",
            "ModelServerPodNotReady",
            "ModelServerNoTraffic",
            "ModelServerFeatureDrift",
            "ModelServerPredictionDrift",
            "ModelServerPodRestarting",
            "ModelServerHPAAtMax",
        ]
    )
    missing = {
        n: cases.get(n, {"firing": 0, "quiet": 0})
        for n in names
        if cases.get(n, {}).get("firing", 0) == 0 or cases.get(n, {}).get("quiet", 0) == 0
    }
    assert not missing, f"alerts without a firing and a quiet promtool case: {missing}"
    assert set(cases) <= set(names), f"tests of alerts that do not exist: {set(cases) - set(names)}"


def _runbook_anchors() -> set[str]:
    # GitHub's anchor of a "## Heading": lower case, spaces to dashes, punctuation dropped.
    headings = re.findall(r"^##+ (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_alert_has_severity_summary_description_and_a_runbook_section(alert):
    assert alert["labels"]["severity"] in {"critical", "warning"}
    ann = alert["annotations"]
    assert ann["summary"].strip() and ann["description"].strip()
    assert "{{ $labels.model }}" in ann["summary"] or "{{ $labels.pod }}" in ann["summary"]
    url = ann["runbook_url"]
    assert url.startswith("https://github.com/model-server/model-server/blob/main/monitoring/RUNBOOK.md#")
    anchor = url.split("#", 1)[1]
    assert anchor in _runbook_anchors(), f"RUNBOOK.md has no section for #{anchor}"


def test_runbook_has_no_section_for_an_alert_that_does_not_exist():
    alert_anchors = {a["alert"].lower() for a in alerts()}
    sections = {a for a in _runbook_anchors() if a.startswith("modelserver")}
    assert sections == alert_anchors


def test_runbook_links_point_at_existing_sections():
    for target in re.findall(r"\]\(#([^)]+)\)", RUNBOOK.read_text()):
        assert target in _runbook_anchors(), f"RUNBOOK.md links to missing section #{target}"


def test_alertmanager_routes_every_severity_the_rules_use():
    route = yaml.safe_load(KPS_VALUES.read_text())["alertmanager"]["config"]["route"]
    routed = {m.split('"')[1] for r in route["routes"] for m in r["matchers"] if m.startswith("severity=")}
    assert {a["labels"]["severity"] for a in alerts()} <= routed
