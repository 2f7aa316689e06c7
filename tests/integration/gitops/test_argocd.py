"""The Argo CD objects of argocd/: valid custom resources, one Git URL, waves in the right order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from support.gitops import ROOT_APP, by_kind, render_root
from support.helm import helm_template_args, load_all
from support.kube import kube_versions, kubeconform
from support.paths import ROOT
from support.tools import run

SEMVER = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+$")
APPS_VALUES = yaml.safe_load((ROOT / "argocd" / "apps" / "values.yaml").read_text())
# The one other Git repository argocd/ names: Argo Rollouts' release manifests, at a pinned tag.
ROLLOUTS_REPO = APPS_VALUES["rollouts"]["repoURL"]


def wave(obj: dict[str, Any]) -> int:
    return int(obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


def test_every_argocd_manifest_validates_against_the_crd_schemas(
    platform_text: str, k8s_schema_dir: Path
) -> None:
    text = ROOT_APP.read_text() + "\n---\n" + platform_text
    done = kubeconform(text, kube_versions()[-1], k8s_schema_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Invalid: 0, Errors: 0, Skipped: 0" in done.stdout, done.stdout


def test_kubeconform_rejects_an_unknown_field(platform_text: str, k8s_schema_dir: Path) -> None:
    """The validation above is strict: a misspelt field in an Argo CD object fails it."""
    broken = platform_text.replace("preserveResourcesOnDeletion: true", "preserveResourceOnDeletion: true")
    assert broken != platform_text
    done = kubeconform(broken, kube_versions()[-1], k8s_schema_dir)
    assert done.returncode != 0
    assert "preserveResourceOnDeletion" in done.stdout


def test_the_root_application_is_the_only_place_the_git_url_is_written(
    root_app: dict[str, Any], platform: list[dict[str, Any]]
) -> None:
    url = root_app["spec"]["source"]["repoURL"]
    assert url.startswith("https://") and url.endswith(".git"), url
    # Every other file under argocd/ takes it from the root Application's build environment.
    for path in (ROOT / "argocd").rglob("*"):
        if path.is_file() and path != ROOT_APP:
            text = path.read_text().replace(ROLLOUTS_REPO, "")
            assert "github.com" not in text, f"{path} writes a Git URL of its own"
    # ... and every object the root renders points at exactly that repository and revision.
    revision = root_app["spec"]["source"]["targetRevision"]
    seen = 0
    for obj in platform:
        text = yaml.safe_dump(obj)
        for found in re.findall(r"repoURL: (\S+)", text):
            if "github.com" in found and found != ROLLOUTS_REPO:
                assert found == url
                seen += 1
        for found in re.findall(r"(?:targetRevision|revision): (\S+)", text):
            if not SEMVER.match(found.strip("'\"")):
                assert found == revision, obj["metadata"]["name"]
    assert seen == 6  # both generators, the template, both $values sources, platform-monitoring
    for project in by_kind(platform, "AppProject"):
        assert url in project["spec"]["sourceRepos"]


def test_the_apps_chart_refuses_to_render_without_the_root_applications_url() -> None:
    done = run(
        helm_template_args(chart=ROOT / "argocd" / "apps", release="apps", namespace=None, kube_version=None),
        check=False,
    )
    assert done.returncode != 0
    assert "repoURL is set by the root Application (argocd/bootstrap/root-application.yaml)" in done.stderr


def test_projects_come_first_then_the_monitoring_stack_then_the_models(
    platform: list[dict[str, Any]],
) -> None:
    waves = {(o["kind"], o["metadata"]["name"]): wave(o) for o in platform}
    projects = [w for (kind, _), w in waves.items() if kind == "AppProject"]
    assert len(projects) == 2
    stack = waves[("Application", "kube-prometheus-stack")]
    adapter = waves[("Application", "prometheus-adapter")]
    rules = waves[("Application", "platform-monitoring")]
    models = waves[("ApplicationSet", "models")]
    rollouts = waves[("Application", "argo-rollouts")]
    assert max(projects) < stack < adapter < models
    # the Rollout and AnalysisTemplate CRDs before any model renders them
    assert max(projects) < rollouts < models
    # the platform's PrometheusRule needs the stack's CRDs; its alerts cover the models from their start
    assert stack < rules < models


def test_the_models_project_allows_this_repository_models_namespaces_and_no_cluster_kind_but_namespace(
    root_app: dict[str, Any], platform: list[dict[str, Any]]
) -> None:
    project = next(p for p in by_kind(platform, "AppProject") if p["metadata"]["name"] == "models")
    spec = project["spec"]
    assert spec["sourceRepos"] == [root_app["spec"]["source"]["repoURL"]]
    assert spec["destinations"] == [{"server": "https://kubernetes.default.svc", "namespace": "models-*"}]
    assert spec["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    assert "*" not in {k["kind"] for k in spec["namespaceResourceWhitelist"]}


def test_the_monitoring_stack_is_pinned_and_reads_its_values_from_monitoring(
    root_app: dict[str, Any], platform: list[dict[str, Any]]
) -> None:
    apps = {a["metadata"]["name"]: a for a in by_kind(platform, "Application")}
    assert set(apps) == {
        "kube-prometheus-stack",
        "prometheus-adapter",
        "platform-monitoring",
        "argo-rollouts",
    }
    apps.pop("platform-monitoring")  # from this repository: test_the_platform_monitoring_release_...
    apps.pop("argo-rollouts")  # from its Git tag: test_argo_rollouts_is_the_version_the_local_cluster_runs
    for name, app in apps.items():
        chart, values = app["spec"]["sources"]
        assert chart["chart"] == name
        assert SEMVER.match(chart["targetRevision"]), f"{name} chart version is not pinned"
        assert values == {
            "repoURL": root_app["spec"]["source"]["repoURL"],
            "targetRevision": root_app["spec"]["source"]["targetRevision"],
            "ref": "values",
        }
        for ref in chart["helm"]["valueFiles"]:
            assert ref.startswith("$values/monitoring/")
            path = ROOT / ref.removeprefix("$values/")
            assert path.is_file(), f"{name} reads {path.relative_to(ROOT)}, which does not exist"
            assert isinstance(yaml.safe_load(path.read_text()), dict)
        assert app["spec"]["project"] == "platform"
        assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    # The stack's CRDs are too large for client-side apply's last-applied annotation.
    assert "ServerSideApply=true" in apps["kube-prometheus-stack"]["spec"]["syncPolicy"]["syncOptions"]
    # ServiceMonitors and PrometheusRules are selected by this release name (environments/common.yaml).
    common = yaml.safe_load((ROOT / "environments" / "common.yaml").read_text())
    release = apps["kube-prometheus-stack"]["spec"]["sources"][0]["helm"]["releaseName"]
    assert common["monitoring"]["releaseLabel"] == release


def test_the_application_health_check_patch_is_argocd_cm_data() -> None:
    patch = yaml.safe_load((ROOT / "argocd" / "bootstrap" / "argocd-cm-patch.yaml").read_text())
    lua = patch["data"]["resource.customizations.health.argoproj.io_Application"]
    assert "obj.status.health.status" in lua and lua.rstrip().endswith("return hs")


def test_the_platform_monitoring_release_is_installed_once_from_this_repository(
    root_app: dict[str, Any], platform: list[dict[str, Any]], k8s_schema_dir: Path
) -> None:
    """The alert rules and dashboards over every model are their own release: one Application of the
    platform project, from this repository's chart at the root's revision, into the namespace of the
    monitoring stack (where Grafana's sidecar looks), rendering exactly one PrometheusRule selected by
    kube-prometheus-stack and one dashboards ConfigMap."""
    apps = {a["metadata"]["name"]: a for a in by_kind(platform, "Application")}
    app, stack = apps["platform-monitoring"], apps["kube-prometheus-stack"]
    source = app["spec"]["source"]
    assert source["repoURL"] == root_app["spec"]["source"]["repoURL"]
    assert source["targetRevision"] == root_app["spec"]["source"]["targetRevision"]
    assert source["path"] == "charts/platform-monitoring" and (ROOT / source["path"] / "Chart.yaml").is_file()
    assert app["spec"]["project"] == "platform"
    assert app["spec"]["destination"] == stack["spec"]["destination"]
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    project = next(p for p in by_kind(platform, "AppProject") if p["metadata"]["name"] == "platform")
    assert source["repoURL"] in project["spec"]["sourceRepos"]
    assert {"server": app["spec"]["destination"]["server"], "namespace": "monitoring"} in project["spec"][
        "destinations"
    ]
    version = kube_versions()[-1]
    done = run(
        helm_template_args(
            chart=ROOT / source["path"],
            release=source["helm"]["releaseName"],
            namespace=app["spec"]["destination"]["namespace"],
            kube_version=version,
        ),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    assert sorted(o["kind"] for o in objects) == ["ConfigMap", "PrometheusRule"]
    rule = next(o for o in objects if o["kind"] == "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == stack["spec"]["sources"][0]["helm"]["releaseName"]
    checked = kubeconform(done.stdout, version, k8s_schema_dir)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Valid: 2, Invalid: 0, Errors: 0, Skipped: 0" in checked.stdout, checked.stdout


def test_monitoring_disabled_leaves_the_projects_and_the_applicationset(root_app: dict[str, Any]) -> None:
    """`monitoring.enabled=false` (a cluster whose Prometheus stack is managed elsewhere, or that cannot
    reach the charts' repository, like the e2e cluster): no monitoring Application, the rest unchanged."""
    with_stack = {(o["kind"], o["metadata"]["name"]) for o in load_all(render_root(root_app))}
    without = load_all(render_root(root_app, extra=["--set=monitoring.enabled=false"]))
    assert {(o["kind"], o["metadata"]["name"]) for o in without} == {
        ("AppProject", "models"),
        ("AppProject", "platform"),
        ("ApplicationSet", "models"),
        ("Application", "argo-rollouts"),
    }
    assert with_stack - {(o["kind"], o["metadata"]["name"]) for o in without} == {
        ("Application", "kube-prometheus-stack"),
        ("Application", "prometheus-adapter"),
        ("Application", "platform-monitoring"),
    }


def test_argo_rollouts_is_the_version_the_local_cluster_runs(platform: list[dict[str, Any]]) -> None:
    """The platform project installs Argo Rollouts from its release tag, the version mk/tools.mk builds for
    the local cluster and whose CRDs the chart is validated against; `rollouts.enabled=false` leaves it out
    and the platform project no longer names its repository."""
    tools = (ROOT / "mk" / "tools.mk").read_text()
    pinned = re.search(r"^ARGO_ROLLOUTS_VERSION\s*:=\s*(\S+)", tools, re.M)
    assert pinned
    apps = {a["metadata"]["name"]: a for a in by_kind(platform, "Application")}
    app = apps["argo-rollouts"]
    assert app["spec"]["source"] == {
        "repoURL": ROLLOUTS_REPO,
        "targetRevision": pinned[1],
        "path": "manifests/cluster-install",
    }
    assert app["spec"]["project"] == "platform"
    assert app["spec"]["destination"]["namespace"] == "argo-rollouts"
    project = next(p for p in by_kind(platform, "AppProject") if p["metadata"]["name"] == "platform")
    assert ROLLOUTS_REPO in project["spec"]["sourceRepos"]
    assert {"server": "https://kubernetes.default.svc", "namespace": "argo-rollouts"} in project["spec"][
        "destinations"
    ]
    models = next(p for p in by_kind(platform, "AppProject") if p["metadata"]["name"] == "models")
    kinds = {(k["group"], k["kind"]) for k in models["spec"]["namespaceResourceWhitelist"]}
    assert {("argoproj.io", "Rollout"), ("argoproj.io", "AnalysisTemplate")} <= kinds


def test_rollouts_disabled_leaves_argo_rollouts_out(root_app: dict[str, Any]) -> None:
    without = load_all(render_root(root_app, extra=["--set=rollouts.enabled=false"]))
    assert "argo-rollouts" not in {o["metadata"]["name"] for o in by_kind(without, "Application")}
    platform = next(p for p in by_kind(without, "AppProject") if p["metadata"]["name"] == "platform")
    assert ROLLOUTS_REPO not in platform["spec"]["sourceRepos"]
