"""The ApplicationSet expanded over this repository's files, as Argo CD's controller would expand it."""

from __future__ import annotations

import fnmatch
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.argocd_emulator import TemplateError, expand
from support.gitops import by_kind, environment_listing, value_files
from support.helm import load_all
from support.kube import kube_versions, kubeconform
from support.paths import ENVIRONMENTS, ROOT

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def name(app: dict[str, Any]) -> str:
    return str(app["metadata"]["name"])


def test_one_application_per_environment_and_model(generated_apps: list[dict[str, Any]]) -> None:
    listing = environment_listing()
    assert set(listing) >= {"dev", "staging", "prod"}
    expected = {f"{env}-{model}" for env, models in listing.items() for model in models}
    assert sorted(name(a) for a in generated_apps) == sorted(expected)
    assert {"dev-iris-classifier", "prod-sales-regressor"} <= expected


def test_names_are_unique_dns_names_and_match_the_file_names(generated_apps: list[dict[str, Any]]) -> None:
    names = [name(a) for a in generated_apps]
    assert len(names) == len(set(names))
    for app in generated_apps:
        assert DNS1123_SUBDOMAIN.match(name(app)) and len(name(app)) <= 253, name(app)
        release = app["spec"]["source"]["helm"]["releaseName"]
        # A Helm release name is a DNS label of at most 53 characters (it prefixes object names).
        assert DNS1123_LABEL.match(release) and len(release) <= 53, release
        model_file = value_files(app)[-1]
        assert model_file.stem == release, f"{model_file} must be named after its model.name {release!r}"
        for value in app["metadata"]["labels"].values():
            assert DNS1123_LABEL.match(value) and len(value) <= 63


def test_every_application_points_at_files_that_exist(generated_apps: list[dict[str, Any]]) -> None:
    for app in generated_apps:
        source = app["spec"]["source"]
        assert (ROOT / source["path"] / "Chart.yaml").is_file()
        files = value_files(app)
        env = app["metadata"]["labels"]["model-server.io/environment"]
        assert files == [
            ENVIRONMENTS / "common.yaml",
            ENVIRONMENTS / env / "values.yaml",
            ENVIRONMENTS / env / "models" / f"{source['helm']['releaseName']}.yaml",
        ]
        for f in files:
            assert f.is_file(), f"{name(app)} reads {f}, which does not exist"
            assert f.is_relative_to(ROOT), f"{name(app)} reads {f}, outside the repository"


def test_the_project_is_a_constant_and_every_destination_is_allowed_by_it(
    models_appset: dict[str, Any], generated_apps: list[dict[str, Any]], platform: list[dict[str, Any]]
) -> None:
    assert "{{" not in models_appset["spec"]["template"]["spec"]["project"]
    assert "project" not in (models_appset["spec"].get("templatePatch") or "")
    project = next(
        p
        for p in by_kind(platform, "AppProject")
        if p["metadata"]["name"] == models_appset["spec"]["template"]["spec"]["project"]
    )
    for app in generated_apps:
        dest = app["spec"]["destination"]
        assert any(
            fnmatch.fnmatchcase(dest["server"], d["server"])
            and fnmatch.fnmatchcase(dest["namespace"], d["namespace"])
            for d in project["spec"]["destinations"]
        ), f"{name(app)}: {dest} not allowed"
        assert app["spec"]["source"]["repoURL"] in project["spec"]["sourceRepos"]


def test_sync_policy_follows_each_environment(generated_apps: list[dict[str, Any]]) -> None:
    for app in generated_apps:
        env = yaml.safe_load(
            (ENVIRONMENTS / app["metadata"]["labels"]["model-server.io/environment"] / "env.yaml").read_text()
        )
        policy = app["spec"]["syncPolicy"]
        if env["sync"]["automated"]:
            assert policy["automated"] == {"prune": True, "selfHeal": True}, name(app)
        else:
            assert "automated" not in policy, f"{name(app)} must wait for a manual sync"
        assert app["metadata"]["annotations"]["model-server.io/sync"] == (
            "automated" if env["sync"]["automated"] else "manual"
        )
        assert "CreateNamespace=true" in policy["syncOptions"]
        # preserveResourcesOnDeletion: no finalizer, so deleting the Application keeps the model running.
        assert "finalizers" not in app["metadata"], name(app)
    manual = {name(a) for a in generated_apps if "automated" not in a["spec"]["syncPolicy"]}
    assert manual == {n for n in map(name, generated_apps) if n.startswith("prod-")}


def test_generated_applications_validate_against_the_application_crd(
    generated_apps: list[dict[str, Any]], k8s_schema_dir: Path
) -> None:
    text = "\n---\n".join(yaml.safe_dump(a) for a in generated_apps)
    done = kubeconform(text, kube_versions()[-1], k8s_schema_dir)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("kube_version", kube_versions())
def test_every_application_renders_and_validates(
    generated_apps: list[dict[str, Any]],
    platform: list[dict[str, Any]],
    k8s_schema_dir: Path,
    rendered_apps: dict[str, dict[str, Path]],
    kube_version: str,
) -> None:
    files = rendered_apps[kube_version]
    checked = kubeconform(sorted(files.values()), kube_version, k8s_schema_dir)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Invalid: 0, Errors: 0, Skipped: 0" in checked.stdout, checked.stdout
    project = next(p for p in by_kind(platform, "AppProject") if p["metadata"]["name"] == "models")
    allowed = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    for app in generated_apps:
        objects = load_all(files[name(app)].read_text())
        assert {o["kind"] for o in objects} >= {"Deployment", "Service"}, name(app)
        for obj in objects:
            group = obj["apiVersion"].rpartition("/")[0]
            assert (group, obj["kind"]) in allowed, (
                f"{name(app)} renders a {obj['kind']}, which the models AppProject does not allow"
            )
            assert obj["metadata"].get("namespace") in (None, app["spec"]["destination"]["namespace"])


def test_no_model_release_carries_platform_wide_rules_or_dashboards(
    generated_apps: list[dict[str, Any]], rendered_apps: dict[str, dict[str, Path]]
) -> None:
    """The rules and dashboards over every model belong to the platform-monitoring release
    (test_argocd.py), never to one model's lifecycle: no model Application renders them."""
    for app in generated_apps:
        objects = load_all(rendered_apps[kube_versions()[-1]][name(app)].read_text())
        kinds = {o["kind"] for o in objects}
        assert "PrometheusRule" not in kinds and "ConfigMap" not in kinds, name(app)
        assert "ServiceMonitor" in kinds, f"{name(app)}: every model is scraped"


def test_a_model_file_without_a_name_fails_the_whole_applicationset(
    models_appset: dict[str, Any], tmp_path: Path
) -> None:
    """missingkey=error: Argo CD refuses to render rather than create an Application named `dev-`."""
    repo = tmp_path / "repo"
    shutil.copytree(ENVIRONMENTS, repo / "environments")
    broken = repo / "environments" / "dev" / "models" / "unnamed.yaml"
    broken.write_text("model:\n  version: '1.0.0'\n")
    with pytest.raises(TemplateError, match='no entry for key "name"'):
        expand(models_appset, repo)
    lenient = dict(models_appset, spec=dict(models_appset["spec"], goTemplateOptions=[]))
    assert "dev-<no value>" in {name(a) for a in expand(lenient, repo)}


def test_adding_an_environment_folder_adds_its_applications(
    models_appset: dict[str, Any], tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ENVIRONMENTS, repo / "environments")
    shutil.copytree(repo / "environments" / "staging", repo / "environments" / "qa")
    env_file = repo / "environments" / "qa" / "env.yaml"
    env_file.write_text(env_file.read_text().replace("models-staging", "models-qa"))
    apps = {name(a): a for a in expand(models_appset, repo)}
    assert apps["qa-iris-classifier"]["spec"]["destination"]["namespace"] == "models-qa"
    assert len(apps) == len(expand(models_appset, ROOT)) + len(environment_listing()["staging"])
