"""Policy scan of the rendered chart with kube-score: no CRITICAL finding in any ci/ scenario beyond
the exceptions written, with their reasons, in the chart README (read from there: one list).

kube-score runs its default checks plus ``container-seccomp-profile``, at the lowest Kubernetes
version the chart claims, on `helm template` output including the helm test pod.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.helm import helm_template_args
from support.kube import kube_version_floor
from support.paths import CHART
from support.tools import run, tool

SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
README = CHART / "README.md"
OPTIONAL_CHECKS = ("container-seccomp-profile",)
CRITICAL = 1  # kube-score grades: 1 critical, 5 warning, 7 almost ok, 10 ok


@dataclass(frozen=True)
class Finding:
    kind: str
    name: str
    check: str
    grade: int
    comments: str


def written_exceptions() -> dict[str, str]:
    """check id -> reason, from the table under '## Policy scan' in the chart README."""
    text = README.read_text()
    assert "## Policy scan" in text, f"{README} has lost its '## Policy scan' section"
    section = text.split("## Policy scan", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (.+) \|$", section, re.MULTILINE)
    return dict(rows)


@cache
def scan(values: Path) -> tuple[Finding, ...]:
    rendered = run(helm_template_args([values])).stdout
    args = [
        tool("kube-score"),
        "score",
        "--output-format",
        "json",
        "--kubernetes-version",
        "v" + ".".join(kube_version_floor().split(".")[:2]),
        "-",
    ]
    for check in OPTIONAL_CHECKS:
        args[2:2] = ["--enable-optional-test", check]
    proc = run(args, check=False, input=rendered)
    assert proc.returncode in (0, 1) and proc.stdout, f"kube-score failed to run:\n{proc.stderr}"
    findings = []
    for obj in json.loads(proc.stdout):
        for c in obj["checks"]:
            if c["skipped"]:
                continue
            comments = "; ".join(f"{x.get('path', '')} {x['summary']}".strip() for x in c["comments"] or [])
            findings.append(
                Finding(
                    obj["type_meta"]["kind"],
                    obj["object_meta"]["name"],
                    c["check"]["id"],
                    c["grade"],
                    comments,
                )
            )
    return tuple(findings)


def values_of(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.parametrize("values", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_no_critical_finding_beyond_the_written_exceptions(values: Path) -> None:
    findings = scan(values)
    assert any(f.kind == "Deployment" for f in findings), "kube-score saw no Deployment"
    allowed = written_exceptions()
    critical = [f for f in findings if f.grade <= CRITICAL and f.check not in allowed]
    assert not critical, "\n".join(f"{f.kind}/{f.name}: {f.check}: {f.comments}" for f in critical)


def test_every_exception_has_a_reason_and_is_still_needed() -> None:
    exceptions = written_exceptions()
    assert exceptions, "the exceptions table is empty or unreadable"
    for check, reason in exceptions.items():
        assert len(reason.split()) >= 12, f"{check}: the reason is too short to be one"
    hit = {f.check for values in SCENARIOS for f in scan(values) if f.grade <= CRITICAL}
    stale = sorted(set(exceptions) - hit)
    assert not stale, f"no scenario fails {stale} any more: remove them from {README.name}"


def test_the_network_policy_exception_covers_only_the_default_and_the_test_pod() -> None:
    """With networkPolicy.enabled the server pods must be selected by it: the exception is for the
    default install (off) and for the helm test pod (which nothing calls), not for production."""
    enabled = [v for v in SCENARIOS if values_of(v).get("networkPolicy", {}).get("enabled")]
    assert enabled, "no ci/ scenario enables the NetworkPolicy"
    for values in enabled:
        uncovered = [
            f
            for f in scan(values)
            if f.check == "pod-networkpolicy" and f.grade <= CRITICAL and f.kind != "Pod"
        ]
        assert not uncovered, f"{values.name}: {uncovered}"


def test_production_security_settings_pass_without_exceptions() -> None:
    """The checks the chart must pass outright in every scenario: no exception may ever cover them."""
    must_pass = {
        "container-security-context-privileged",
        "container-security-context-readonlyrootfilesystem",
        "container-security-context-user-group-id",
        "container-seccomp-profile",
        "container-image-tag",
        "pod-probes",
        "label-values",
        "stable-version",
    }
    assert not must_pass & set(written_exceptions())
    for values in SCENARIOS:
        seen = {f.check for f in scan(values)}
        assert must_pass - {"pod-probes"} <= seen, f"{values.name}: kube-score did not run {must_pass - seen}"
        failing = [f for f in scan(values) if f.check in must_pass and f.grade < 10]
        assert not failing, f"{values.name}: {failing}"
