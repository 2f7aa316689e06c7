"""The chart as helm and the Kubernetes API would see it: helm-unittest, kubeconform against every
Kubernetes version the chart claims, and schema errors that name the mistyped key (`make lint` runs
`helm lint --strict` over the defaults and every values file)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.helm import KUBE_VERSION, VALUES_FILES, helm_template_args, render
from support.kube import kube_version_floor, kube_versions, kubeconform
from support.paths import CHART
from support.tools import run, tool

# The `oci` source mounts an image volume, a field the API has from 1.31 on.
OCI_MIN_MINOR = 31


def test_helm_unittest_suites_pass() -> None:
    """Every suite in charts/model-server/tests (each template and values branch, schema rejections)."""
    suites = sorted((CHART / "tests").glob("*_test.yaml"))
    assert len(suites) >= 10, suites
    proc = run([tool("helm"), "unittest", "--color=false", str(CHART)], check=False)
    assert proc.returncode == 0, f"helm unittest failed:\n{proc.stdout}\n{proc.stderr}"
    summary = next(line for line in proc.stdout.splitlines() if line.startswith("Tests:"))
    assert "failed" not in summary and "errored" not in summary, summary


def _source_type(values: Path | None) -> str:
    if values is None:
        return "image"
    return (yaml.safe_load(values.read_text()).get("model") or {}).get("source", {}).get("type", "image")


@pytest.mark.parametrize("version", kube_versions())
def test_rendered_manifests_are_valid_for_kubernetes(
    version: str, k8s_schema_dir: Path, tmp_path: Path
) -> None:
    """kubeconform -strict on the defaults and every scenario/example: unknown fields fail, built-in kinds
    against that version's API schemas, ServiceMonitor/PrometheusRule against the operator's CRD schemas.
    One kubeconform run per version (each render is its own file, so a failure names it)."""
    total = 0
    for values in [None, *VALUES_FILES]:
        files = [values] if values else []
        name = values.name if values else "defaults.yaml"
        if _source_type(values) == "oci" and int(version.split(".")[1]) < OCI_MIN_MINOR:
            proc = run(helm_template_args(files, kube_version=version), check=False)
            assert proc.returncode != 0, name
            assert "model.source.type=oci uses an image volume, which needs Kubernetes 1.31" in proc.stderr
            continue
        manifest = run(helm_template_args(files, kube_version=version)).stdout
        kinds = [d["kind"] for d in yaml.safe_load_all(manifest) if d]
        assert "Deployment" in kinds, name
        total += len(kinds)
        (tmp_path / name).write_text(manifest)
    proc = kubeconform([tmp_path], version, k8s_schema_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Valid: {total}, Invalid: 0, Errors: 0, Skipped: 0" in proc.stdout, proc.stdout


def test_kube_version_range_is_checked_against_the_floor() -> None:
    """The chart refuses a cluster below its kubeVersion (the preStop sleep action needs 1.30)."""
    floor = kube_version_floor()
    minor = int(floor.split(".")[1])
    proc = run(helm_template_args(kube_version=f"1.{minor - 1}.0"), check=False)
    assert proc.returncode != 0
    assert "incompatible with Kubernetes" in proc.stderr


@pytest.mark.parametrize(
    ("typo", "error"),
    [
        ({"replicaCont": 2}, "at '': additional properties 'replicaCont' not allowed"),
        ({"model": {"verison": "2.0.0"}}, "at '/model': additional properties 'verison' not allowed"),
        (
            {"autoscaling": {"enabled": True, "maxReplica": 5}},
            "at '/autoscaling': additional properties 'maxReplica' not allowed",
        ),
        (
            {"monitoring": {"serviceMonitor": {"enable": True}}},
            "at '/monitoring/serviceMonitor': additional properties 'enable' not allowed",
        ),
    ],
)
def test_values_typo_fails_with_an_error_naming_the_key(typo: dict, error: str, tmp_path: Path) -> None:
    """What a user sees: `helm template`/`helm install` and `helm lint` with a mistyped values file."""
    values = tmp_path / "my-values.yaml"
    values.write_text(yaml.safe_dump(typo))
    proc = run(helm_template_args([values]), check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert error in proc.stderr, proc.stderr
    lint = run(
        [tool("helm"), "lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART), "-f", str(values)],
        check=False,
    )
    assert lint.returncode != 0
    assert error in lint.stdout + lint.stderr


def test_every_documented_example_renders_with_defaults_filled_in() -> None:
    """README and values.yaml point at these files; each one must render and keep the contract labels."""
    names = {f.name for f in VALUES_FILES}
    assert {
        "minimal-values.yaml",
        "url-hpa-pdb-netpol-values.yaml",
        "monitoring-values.yaml",
        "pvc-values.yaml",
        "oci-values.yaml",
        "custom-metric-hpa-values.yaml",
    } <= names
    for values in VALUES_FILES:
        version = f"1.{OCI_MIN_MINOR + 2}.0" if _source_type(values) == "oci" else KUBE_VERSION
        docs = render(values, kube_version=version)
        dep = next(d for d in docs if d["kind"] == "Deployment")
        model = yaml.safe_load(values.read_text()).get("model") or {}
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert labels["model-server.io/model"] == model.get("name", "iris-classifier"), values.name
        assert labels["model-server.io/model-version"] == model.get("version", "1.0.0"), values.name
