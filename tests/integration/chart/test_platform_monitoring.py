"""charts/platform-monitoring, the platform's alert rules and dashboards (one release per cluster): its
helm-unittest suites, strict validation of every scenario against the Kubernetes and Prometheus
Operator schemas, and that it ships exactly what monitoring/generate.py produced."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from support.helm import render
from support.kube import kube_versions
from support.paths import CRD_SCHEMAS, PLATFORM_CHART
from support.tools import run, tool

PLATFORM = PLATFORM_CHART
SCENARIOS = sorted((PLATFORM / "ci").glob("*-values.yaml"))


def test_helm_unittest_suites_pass() -> None:
    suites = sorted((PLATFORM / "tests").glob("*_test.yaml"))
    assert [s.name for s in suites] == ["dashboards_test.yaml", "notes_test.yaml", "prometheusrule_test.yaml"]
    proc = run([tool("helm"), "unittest", "--color=false", str(PLATFORM)], check=False)
    assert proc.returncode == 0, f"helm unittest failed:\n{proc.stdout}\n{proc.stderr}"
    summary = next(line for line in proc.stdout.splitlines() if line.startswith("Tests:"))
    assert "failed" not in summary and "errored" not in summary, summary


@pytest.mark.parametrize("version", kube_versions())
def test_every_scenario_validates_against_the_api_and_crd_schemas(
    version: str, k8s_schema_dir: Path, tmp_path: Path
) -> None:
    assert [s.name for s in SCENARIOS] == ["default-values.yaml", "short-alerts-values.yaml"]
    for values in SCENARIOS:
        docs = render(values, chart=PLATFORM, kube_version=version)
        assert sorted(d["kind"] for d in docs) == ["ConfigMap", "PrometheusRule"], values.name
        (tmp_path / values.name).write_text(yaml.safe_dump_all(docs))
    proc = run(
        [
            tool("kubeconform"),
            "-strict",
            "-summary",
            "-output",
            "text",
            "-kubernetes-version",
            version,
            "-schema-location",
            str(
                k8s_schema_dir / "{{.NormalizedKubernetesVersion}}" / "{{.ResourceKind}}{{.KindSuffix}}.json"
            ),
            "-schema-location",
            str(CRD_SCHEMAS / "{{.Group}}" / "{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"),
            str(tmp_path),
        ],
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Valid: 4, Invalid: 0, Errors: 0, Skipped: 0" in proc.stdout, proc.stdout


def test_kubeconform_rejects_a_misspelt_rule_field(k8s_schema_dir: Path, tmp_path: Path) -> None:
    """The validation above is strict against the operator's PrometheusRule schema."""
    rule = next(d for d in render(chart=PLATFORM) if d["kind"] == "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["exprr"] = rule["spec"]["groups"][0]["rules"][0].pop("expr")
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(rule))
    proc = run(
        [
            tool("kubeconform"),
            "-strict",
            "-schema-location",
            str(CRD_SCHEMAS / "{{.Group}}" / "{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"),
            str(tmp_path / "broken.yaml"),
        ],
        check=False,
    )
    assert proc.returncode != 0 and "exprr" in proc.stdout, proc.stdout


def test_the_release_embeds_exactly_the_generated_files() -> None:
    """One source of truth: the PrometheusRule carries files/prometheus-rules.yaml's groups and the
    dashboards ConfigMap one key per files/dashboards/*.json, byte for byte."""
    docs = render(chart=PLATFORM)
    rules_file = PLATFORM / "files" / "prometheus-rules.yaml"
    dashboards = sorted((PLATFORM / "files" / "dashboards").glob("*.json"))
    assert rules_file.exists() and dashboards, "monitoring/generate.py writes the chart's files/"
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(rules_file.read_text())["groups"]
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    assert sorted(cm["data"]) == [p.name for p in dashboards]
    for p in dashboards:
        assert cm["data"][p.name] == p.read_text().rstrip("\n")
        json.loads(cm["data"][p.name])


def test_shortened_alerts_change_only_their_for() -> None:
    """forOverride touches `for:` and nothing else, so a test cluster runs the real expressions."""
    generated = yaml.safe_load((PLATFORM / "files" / "prometheus-rules.yaml").read_text())["groups"]
    short = PLATFORM / "ci" / "short-alerts-values.yaml"
    groups = next(d for d in render(short, chart=PLATFORM) if d["kind"] == "PrometheusRule")["spec"]["groups"]
    changed = 0
    for want, got in zip(generated, groups, strict=True):
        for a, b in zip(want["rules"], got["rules"], strict=True):
            if "alert" in a and a != b:
                assert {**b, "for": None} == {**a, "for": None}
                assert b["for"] == ("0s" if a["alert"] == "ModelServerModelUnavailable" else "30s")
                changed += 1
            else:
                assert a == b
    assert changed == 10  # every alert but the one without a `for:` (ModelServerPodRestarting)


def test_chart_without_generated_files_renders_nothing_and_says_so(tmp_path: Path) -> None:
    """A copy of the chart without files/ installs: no empty PrometheusRule or ConfigMap, and NOTES
    explains why (helm template does not print NOTES.txt: helm-unittest renders it)."""
    chart = tmp_path / "platform-monitoring"
    shutil.copytree(PLATFORM, chart, ignore=shutil.ignore_patterns("files", "tests"))
    assert render(chart=chart) == []
    (chart / "tests").mkdir()
    (chart / "tests" / "notes_test.yaml").write_text(
        yaml.safe_dump(
            {
                "suite": "notes without files",
                "templates": ["templates/NOTES.txt"],
                "tests": [
                    {
                        "it": "warns",
                        "asserts": [
                            {"matchRegexRaw": {"pattern": "no PrometheusRule was rendered"}},
                            {"matchRegexRaw": {"pattern": "no dashboards ConfigMap was rendered"}},
                        ],
                    }
                ],
            }
        )
    )
    proc = run([tool("helm"), "unittest", "--color=false", str(chart)], check=False)
    assert proc.returncode == 0, proc.stdout
