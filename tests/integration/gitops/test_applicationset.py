"""The ApplicationSet and the releases it reads, offline: what can be checked without Argo CD.

What Argo CD's ApplicationSet controller generates from these files (one Application per environment
and model, names, projects, destinations, sync policies, the errors it reports) is asserted on the
cluster, from the controller's own output: tests/e2e/test_gitops.py.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
from support.gitops import Release, by_kind
from support.helm import load_all
from support.kube import kube_versions, kubeconform

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def models_project(platform: list[dict[str, Any]]) -> dict[str, Any]:
    return next(p for p in by_kind(platform, "AppProject") if p["metadata"]["name"] == "models")


def test_each_model_file_is_named_after_its_model_and_names_are_label_safe(
    all_releases: list[Release],
) -> None:
    """The Application is `<env>-<model.name>` and the Helm release `<model.name>`: a file named
    otherwise would give an Application that no file name leads to."""
    for release in all_releases:
        name = release.model["name"]
        assert release.model_file.stem == name, (
            f"{release.model_file} must be named after its model.name {name!r}"
        )
        # A Helm release name is a DNS label of at most 53 characters (it prefixes object names); the
        # Application name is a label value too (model-server.io/... labels carry its parts).
        assert DNS1123_LABEL.match(name) and len(name) <= 53, name
        assert DNS1123_LABEL.match(release.name) and len(release.name) <= 63, release.name


def test_the_applicationset_layers_the_three_values_files_in_order(models_appset: dict[str, Any]) -> None:
    source = models_appset["spec"]["template"]["spec"]["source"]
    assert source["path"] == "charts/model-server"
    assert source["helm"]["valueFiles"] == [
        "../../environments/common.yaml",
        "../../{{ .env.path.path }}/values.yaml",
        "../../{{ .modelFile.path.path }}/{{ .modelFile.path.filename }}",
    ]
    assert source["helm"]["releaseName"] == "{{ .model.name }}"
    assert models_appset["spec"]["goTemplateOptions"] == ["missingkey=error"]
    assert models_appset["spec"]["syncPolicy"] == {"preserveResourcesOnDeletion": True}


def test_the_project_is_a_constant_and_every_environment_is_allowed_by_it(
    models_appset: dict[str, Any], all_releases: list[Release], platform: list[dict[str, Any]]
) -> None:
    assert models_appset["spec"]["template"]["spec"]["project"] == "models"
    assert "project" not in (models_appset["spec"].get("templatePatch") or "")
    project = models_project(platform)
    for release in all_releases:
        assert any(
            fnmatch.fnmatchcase(release.namespace, d["namespace"]) for d in project["spec"]["destinations"]
        ), f"{release.name}: namespace {release.namespace} is not allowed by the models project"


@pytest.mark.parametrize("kube_version", kube_versions())
def test_every_release_renders_and_validates(
    all_releases: list[Release],
    platform: list[dict[str, Any]],
    k8s_schema_dir: Path,
    rendered_releases: dict[str, dict[str, Path]],
    kube_version: str,
) -> None:
    files = rendered_releases[kube_version]
    checked = kubeconform(sorted(files.values()), kube_version, k8s_schema_dir)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Invalid: 0, Errors: 0, Skipped: 0" in checked.stdout, checked.stdout
    allowed = {
        (k["group"], k["kind"]) for k in models_project(platform)["spec"]["namespaceResourceWhitelist"]
    }
    for release in all_releases:
        objects = load_all(files[release.name].read_text())
        assert {o["kind"] for o in objects} >= {"Deployment", "Service"}, release.name
        for obj in objects:
            group = obj["apiVersion"].rpartition("/")[0]
            assert (group, obj["kind"]) in allowed, (
                f"{release.name} renders a {obj['kind']}, which the models AppProject does not allow"
            )
            assert obj["metadata"].get("namespace") in (None, release.namespace)


def test_no_model_release_carries_platform_wide_rules_or_dashboards(
    all_releases: list[Release], rendered_releases: dict[str, dict[str, Path]]
) -> None:
    """The rules and dashboards over every model belong to the platform-monitoring release
    (test_argocd.py), never to one model's lifecycle: no model Application renders them."""
    for release in all_releases:
        objects = load_all(rendered_releases[kube_versions()[-1]][release.name].read_text())
        kinds = {o["kind"] for o in objects}
        assert "PrometheusRule" not in kinds and "ConfigMap" not in kinds, release.name
        assert "ServiceMonitor" in kinds, f"{release.name}: every model is scraped"
