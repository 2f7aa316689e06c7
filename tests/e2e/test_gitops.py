"""GitOps for real: Argo CD on the cluster syncs this repository from a Git server, and `git push` is
what deploys.

Scenario (one module-scoped fixture, the tests in order on one worker, about five minutes):
- Argo CD is installed by `make e2e` (cluster/addons-argocd.sh: the pinned module's core install, polling
  Git every 10 s); a Git server runs in the cluster (cluster/images/git-server) and this checkout is
  pushed to it as a fork would be: one commit with the files as they are, then one commit that points
  the fork at this cluster (the Git URL in the root Application, the image the cluster has, requests
  and replica floors a two-core node holds, prod's canary analysis measured every few seconds instead
  of every 30, and `monitoring.enabled=false` and `rollouts.enabled=false` because `make e2e` installs
  the monitoring stack and Argo Rollouts itself and their repositories are unreachable here);
- the bootstrap is the one docs/operations/gitops.md gives: the argocd-cm patch, then the root
  Application, applied with kubectl; the prod sync and prod's token Secret are the documented manual
  steps; releases move with environments/promote.py (what `make promote` runs), each a commit pushed.
Everything asserted is read from what Argo CD's controllers wrote (Application and ApplicationSet
status) and from the cluster's Deployments and prod's Rollouts (prod releases by canary), never from
our own files' expansion.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.argocd import (
    ARGOCD_NAMESPACE,
    GIT_PORT,
    WorkingCopy,
    application,
    applications,
    argocd,
    conditions,
    core_kubeconfig,
    delete_platform,
    start_git_server,
    sync_status,
)
from support.cluster import (
    CREATED_NAMESPACES,
    Image,
    create_namespace,
    delete_namespace,
    describe,
    http,
    kubectl,
    kubectl_json,
    port_forward,
    serve_bundle,
    wait_until,
)

pytestmark = pytest.mark.timeout(600)

ROOT_APP = "model-serving-platform"
MODEL, REGRESSOR = "iris-classifier", "sales-regressor"
ENVIRONMENTS = ("dev", "staging", "prod")
# Prod's bearer token (environments/prod/values.yaml: a Secret created out of band).
TOKEN = "e2e-gitops-token-0123456789"
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
# What the fork commit sets for a two-core node: every model's CPU and memory requests, and the HPAs'
# floor (staging 2 and prod 3 replicas of two models would not fit beside the rest of the suite).
LOCAL_REQUESTS = {"cpu": "50m", "memory": "128Mi"}
# ... and prod's canary analysis: one measurement per step after three scrapes, not three 30 s apart.
LOCAL_ANALYSIS = {"initialDelay": "15s", "interval": "5s", "count": 1, "window": "30s"}
# Argo CD polls every 10 s here (cluster/addons/argocd/settings.yaml); a rollout of one pod takes
# seconds more. The waits are bounds, not expectations.
SYNC_TIMEOUT = 180


@dataclass
class Platform:
    repo: WorkingCopy
    git_url: str  # the repository as Argo CD reads it
    push_url: str  # the same through a port-forward, for the test's pushes
    git_namespace: str
    kubeconfig: Path  # for `argocd --core`
    bootstrap: str  # the SHA the root Application was applied at

    def push(self, message: str) -> str:
        self.repo.commit(message)
        return self.repo.push(self.push_url)


def show(command: str, output: str) -> None:
    """Print a command and its output (the docs quote them: `make e2e E2E_ARGS="-k test_gitops -rP"`)."""
    print(f"$ {command}\n{output.rstrip()}\n")


def namespace_of(env: str) -> str:
    return f"models-{env}"


def fork_for_this_cluster(repo: WorkingCopy, git_url: str, image: Image) -> None:
    """The commit a fork makes before its first bootstrap (docs/operations/gitops.md), plus what only
    this two-core test cluster needs."""
    root = repo.read_yaml("argocd/bootstrap/root-application.yaml")
    root["spec"]["source"]["repoURL"] = git_url
    root["spec"]["source"]["helm"]["parameters"] += [
        {"name": "monitoring.enabled", "value": "false"},
        {"name": "rollouts.enabled", "value": "false"},
    ]
    repo.write_yaml("argocd/bootstrap/root-application.yaml", root)
    common = repo.read_yaml("environments/common.yaml")
    common["image"]["repository"] = image.repository
    repo.write_yaml("environments/common.yaml", common)
    for env in ENVIRONMENTS:
        values = repo.read_yaml(f"environments/{env}/values.yaml")
        values["resources"]["requests"] = dict(LOCAL_REQUESTS)
        if values.get("autoscaling", {}).get("enabled"):
            values["autoscaling"].update(minReplicas=1, maxReplicas=2)
        if values.get("podDisruptionBudget", {}).get("enabled"):
            values["podDisruptionBudget"]["minAvailable"] = 1
        if values.get("rollout", {}).get("strategy") == "canary":
            values["rollout"]["canary"] = {"analysis": dict(LOCAL_ANALYSIS)}
            values.setdefault("monitoring", {})["serviceMonitor"] = {"interval": "5s", "scrapeTimeout": "4s"}
        repo.write_yaml(f"environments/{env}/values.yaml", values)
        for model in (MODEL, REGRESSOR):
            name = f"environments/{env}/models/{model}.yaml"
            release = repo.read_yaml(name)
            release["image"]["tag"] = image.tag
            repo.write_yaml(name, release)


def deployment(env: str, model: str) -> dict[str, Any] | None:
    found = kubectl_json(
        "get", "deployments", "-n", namespace_of(env), "-l", f"app.kubernetes.io/instance={model}"
    )
    return found["items"][0] if found["items"] else None


def rollout(env: str, model: str) -> dict[str, Any] | None:
    found = kubectl_json(
        "get", "rollouts", "-n", namespace_of(env), "-l", f"app.kubernetes.io/instance={model}"
    )
    return found["items"][0] if found["items"] else None


def serving_version(env: str, model: str) -> str | None:
    """The model version a release runs once its rollout is complete, else None: for a Deployment, every
    replica updated and ready; for a canary's Rollout, Healthy with the newest revision stable, and the
    version its ready pods carry."""
    r = rollout(env, model)
    if r is not None:
        status = r.get("status") or {}
        if status.get("phase") != "Healthy" or status.get("stableRS") != status.get("currentPodHash"):
            return None
        selector = f"app.kubernetes.io/instance={model},rollouts-pod-template-hash={status['stableRS']}"
        running = kubectl_json("get", "pods", "-n", namespace_of(env), "-l", selector)["items"]
        versions = {p["metadata"]["labels"]["model-server.io/model-version"] for p in running}
        return versions.pop() if len(versions) == 1 else None
    d = deployment(env, model)
    if d is None:
        return None
    status, want = d.get("status") or {}, d["spec"]["replicas"]
    done = (
        status.get("observedGeneration") == d["metadata"]["generation"]
        and status.get("updatedReplicas") == want
        and status.get("readyReplicas") == want
        and status.get("replicas") == want
    )
    return d["spec"]["template"]["metadata"]["labels"]["model-server.io/model-version"] if done else None


def wait_serving(env: str, model: str, version: str) -> None:
    wait_until(
        lambda: serving_version(env, model) == version,
        SYNC_TIMEOUT,
        f"{env}/{model} to run {version}",
        interval=2,
    )


def wait_synced(name: str, revision: str | None = None) -> dict[str, Any]:
    def synced() -> dict[str, Any] | None:
        app = application(name)
        at = (app.get("status") or {}).get("sync", {}).get("revision")
        ok = sync_status(app) == ("Synced", "Healthy") and (revision is None or at == revision)
        return app if ok else None

    return wait_until(
        synced, SYNC_TIMEOUT, f"{name} Synced and Healthy at {revision or 'any revision'}", interval=2
    )


def answered(url: str, row: dict[str, Any], headers: dict[str, str] | None, status: int) -> Any:
    """The body of a POST /predict once it answers with ``status`` (the port-forward may need a moment)."""
    got, body = http("POST", f"{url}/predict", row, headers=headers)
    return body if got == status else None


def predict(env: str, model: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    with port_forward(namespace_of(env), f"service/{model}-model-server", 8000) as url:
        row = ROW
        if model != MODEL:  # the regressor's columns, from its metadata
            meta = wait_until(
                lambda: http("GET", f"{url}/v2/models/{model}", headers=headers)[1], 60, "metadata"
            )
            row = {i["name"]: "north" if i["datatype"] == "BYTES" else 1 for i in meta["inputs"]}
        body = wait_until(lambda: answered(url, row, headers, 200), 60, f"a prediction from {env}/{model}")
    return dict(body)


@pytest.fixture(scope="module")
def platform(
    cluster: str,
    server_image: Image,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Platform]:
    git_image = os.environ.get("E2E_GIT_SERVER_IMAGE")
    if not git_image:
        pytest.fail("E2E_GIT_SERVER_IMAGE is not set: run the suite with `make e2e`", pytrace=False)
    work = tmp_path_factory.mktemp("gitops")
    failures_before, failed = request.session.testsfailed, False
    with ExitStack() as stack:
        git_ns = create_namespace(f"e2e-gitops-git-{os.urandom(3).hex()}")
        stack.callback(lambda: delete_namespace(git_ns, failed))
        for env in ENVIRONMENTS:  # Argo CD creates them; the suite waits for their deletion
            CREATED_NAMESPACES.append(namespace_of(env))
            stack.callback(
                lambda env=env: kubectl(
                    "delete", "namespace", namespace_of(env), "--wait=false", "--ignore-not-found"
                )
            )
        stack.callback(lambda: delete_platform(ROOT_APP))
        git_url = start_git_server(git_ns, git_image)
        forward = stack.enter_context(port_forward(git_ns, "service/git", GIT_PORT))
        repo = WorkingCopy.of_this_repository(work / "platform")
        fork_for_this_cluster(repo, git_url, server_image)
        repo.commit("this cluster: the Git server's URL, the images on the node, two-core requests")
        sha = repo.push(forward)
        # The bootstrap, as docs/operations/gitops.md gives it (Argo CD itself is installed by make e2e).
        kubectl(
            "-n",
            ARGOCD_NAMESPACE,
            "patch",
            "configmap",
            "argocd-cm",
            "--patch-file",
            str(repo.path / "argocd/bootstrap/argocd-cm-patch.yaml"),
        )
        kubectl(
            "apply", "-n", ARGOCD_NAMESPACE, "-f", str(repo.path / "argocd/bootstrap/root-application.yaml")
        )
        yield Platform(repo, git_url, forward, git_ns, core_kubeconfig(work / "kubeconfig"), sha)
        failed = request.session.testsfailed > failures_before
        if failed:
            for env in ENVIRONMENTS:
                print(f"\n=== {namespace_of(env)} ===\n{describe(namespace_of(env))}")
            print(
                kubectl(
                    "get", "applications,applicationsets", "-n", ARGOCD_NAMESPACE, "-o", "yaml", check=False
                )
            )
            print(
                kubectl(
                    "logs",
                    "-n",
                    ARGOCD_NAMESPACE,
                    "statefulset/argocd-application-controller",
                    "--tail=80",
                    check=False,
                )
            )
            print(
                kubectl(
                    "logs",
                    "-n",
                    ARGOCD_NAMESPACE,
                    "deployment/argocd-applicationset-controller",
                    "--tail=40",
                    check=False,
                )
            )


def test_the_root_application_syncs_the_projects_and_the_applicationset(platform: Platform) -> None:
    root = wait_synced(ROOT_APP, platform.bootstrap)
    made = {(r["kind"], r["name"]) for r in root["status"]["resources"]}
    assert made == {
        ("AppProject", "models"),
        ("AppProject", "platform"),
        ("ApplicationSet", "models"),
    }, "monitoring.enabled=false and rollouts.enabled=false leave the platform's Applications out"
    projects = {
        p["metadata"]["name"]: p for p in kubectl_json("get", "appprojects", "-n", ARGOCD_NAMESPACE)["items"]
    }
    assert {"models", "platform"} <= set(projects)
    assert projects["models"]["spec"]["sourceRepos"] == [platform.git_url]
    assert projects["models"]["spec"]["destinations"] == [
        {"server": "https://kubernetes.default.svc", "namespace": "models-*"}
    ]


def test_the_applicationset_makes_one_application_per_environment_and_model(platform: Platform) -> None:
    expected = {f"{env}-{model}" for env in ENVIRONMENTS for model in (MODEL, REGRESSOR)}

    def generated() -> dict[str, dict[str, Any]] | None:
        apps = {n: a for n, a in applications().items() if n != ROOT_APP}
        return apps if set(apps) == expected else None

    apps = wait_until(generated, SYNC_TIMEOUT, f"the Applications {sorted(expected)}", interval=2)
    appset = kubectl_json("get", "applicationset", "-n", ARGOCD_NAMESPACE, "models")
    for name, app in apps.items():
        env, model = name.split("-", 1)
        owner = app["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("ApplicationSet", "models"), name
        assert app["spec"]["project"] == "models", name
        assert app["spec"]["destination"] == {
            "server": "https://kubernetes.default.svc",
            "namespace": namespace_of(env),
        }
        source = app["spec"]["source"]
        assert (source["repoURL"], source["targetRevision"], source["path"]) == (
            platform.git_url,
            "main",
            "charts/model-server",
        )
        assert source["helm"]["releaseName"] == model
        assert source["helm"]["valueFiles"] == [
            "../../environments/common.yaml",
            f"../../environments/{env}/values.yaml",
            f"../../environments/{env}/models/{model}.yaml",
        ]
        automated = app["spec"]["syncPolicy"].get("automated")
        if env == "prod":
            assert automated is None, f"{name} must wait for a person"
        else:
            assert automated == {"prune": True, "selfHeal": True}, name
        assert app["metadata"]["labels"] == {
            "model-server.io/environment": env,
            "model-server.io/model": model,
        }
    assert not [c for c in conditions(appset) if c["type"] == "ErrorOccurred" and c["status"] == "True"]


def test_dev_and_staging_sync_by_themselves_and_answer(platform: Platform) -> None:
    for env in ("dev", "staging"):
        for model in (MODEL, REGRESSOR):
            wait_synced(f"{env}-{model}", platform.bootstrap)
            wait_serving(env, model, "1.0.0")
    show("kubectl -n argocd get applications", kubectl("-n", ARGOCD_NAMESPACE, "get", "applications"))
    answer = predict("dev", MODEL)
    assert (answer["model_name"], answer["model_version"], answer["predictions"]) == (
        MODEL,
        "1.0.0",
        ["setosa"],
    )
    assert predict("dev", REGRESSOR)["model_version"] == "1.0.0"


def test_prod_waits_for_a_sync_then_serves_with_its_token(platform: Platform) -> None:
    for model in (MODEL, REGRESSOR):
        app = wait_until(
            lambda model=model: next(
                (a for a in [application(f"prod-{model}")] if sync_status(a)[0] == "OutOfSync"), None
            ),
            SYNC_TIMEOUT,
            f"prod-{model} compared with Git",
            interval=2,
        )
        assert (app.get("status") or {}).get("operationState") is None, "nothing synced prod"
    assert deployment("prod", MODEL) is None
    # The documented manual steps: prod's token Secret, then the sync.
    kubectl("create", "namespace", namespace_of("prod"))
    kubectl(
        "-n",
        namespace_of("prod"),
        "create",
        "secret",
        "generic",
        "model-server-tokens",
        f"--from-literal=tokens={TOKEN}",
    )
    out = argocd(
        "app",
        "sync",
        "-l",
        "model-server.io/environment=prod",
        "--timeout",
        "240",
        kubeconfig=platform.kubeconfig,
    )
    show("argocd app sync -l model-server.io/environment=prod --core", out)
    for model in (MODEL, REGRESSOR):
        wait_synced(f"prod-{model}", platform.bootstrap)
        wait_serving("prod", model, "1.0.0")
    with port_forward(namespace_of("prod"), f"service/{MODEL}-model-server", 8000) as url:
        body = wait_until(lambda: answered(url, ROW, None, 401), 60, "a prediction without a token refused")
        print(f"prod without a token: 401 {body}")
    answer = predict("prod", MODEL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer["model_version"] == "1.0.0"


def test_a_pushed_release_reaches_dev_by_itself_and_moves_nothing_else(
    platform: Platform, server_image: Image
) -> None:
    # Version 2.0.0 of the model, served as a `url` bundle from the Git server's namespace.
    url, sha256, _ = serve_bundle(platform.git_namespace, server_image, "--version", "2.0.0")
    platform.repo.promote(
        "set-model", "--env", "dev", "--model", MODEL, "--version", "2.0.0", "--url", url, "--sha256", sha256
    )
    diff = platform.repo.git("diff", "--stat")
    assert diff.strip().startswith(f"environments/dev/models/{MODEL}.yaml") and "1 file changed" in diff, diff
    sha = platform.push(f"{MODEL} 2.0.0 in dev")
    wait_synced(f"dev-{MODEL}", sha)
    wait_serving("dev", MODEL, "2.0.0")
    assert predict("dev", MODEL)["model_version"] == "2.0.0"
    for env, model in (("dev", REGRESSOR), ("staging", MODEL), ("prod", MODEL)):
        assert serving_version(env, model) == "1.0.0", (env, model)


def test_promotion_reaches_staging_by_itself_and_prod_only_with_a_sync(platform: Platform) -> None:
    platform.repo.promote("promote", "--model", MODEL, "--from", "dev", "--to", "staging")
    sha = platform.push(f"promote {MODEL} 2.0.0 to staging")
    wait_synced(f"staging-{MODEL}", sha)
    wait_serving("staging", MODEL, "2.0.0")

    out = platform.repo.promote("promote", "--model", MODEL, "--from", "staging", "--to", "prod")
    show(f"make promote MODEL={MODEL} FROM=staging TO=prod", out + platform.repo.git("diff"))
    sha = platform.push(f"promote {MODEL} 2.0.0 to prod")

    def seen_not_applied() -> dict[str, Any] | None:
        app = application(f"prod-{MODEL}")
        status = app.get("status") or {}
        return (
            app
            if status.get("sync", {}).get("revision") == sha and status["sync"]["status"] == "OutOfSync"
            else None
        )

    # Argo CD has compared prod with the new commit and reports the difference; it applies nothing.
    app = wait_until(
        seen_not_applied, SYNC_TIMEOUT, f"prod-{MODEL} to see {sha} and stay OutOfSync", interval=2
    )
    assert app["status"]["operationState"]["syncResult"]["revision"] != sha
    assert serving_version("prod", MODEL) == "1.0.0"
    show("kubectl -n argocd get applications", kubectl("-n", ARGOCD_NAMESPACE, "get", "applications"))
    show(
        f"argocd app diff prod-{MODEL} --core",
        argocd("app", "diff", f"prod-{MODEL}", kubeconfig=platform.kubeconfig, ok=(0, 1)),
    )

    out = argocd("app", "sync", f"prod-{MODEL}", "--timeout", "240", kubeconfig=platform.kubeconfig)
    show(f"argocd app sync prod-{MODEL} --core", out)
    wait_synced(f"prod-{MODEL}", sha)
    wait_serving("prod", MODEL, "2.0.0")
    # Prod released 2.0.0 as a canary: Argo CD reports the Rollout's own health (Argo CD 3 keeps
    # resource health in its resource tree, which `argocd app get` shows), and each step's analysis ran
    # against the cluster's Prometheus and passed.
    shown = argocd("app", "get", f"prod-{MODEL}", kubeconfig=platform.kubeconfig)
    show(f"argocd app get prod-{MODEL} --core", shown)
    [row] = [ln.split() for ln in shown.splitlines() if ln.split()[:2] == ["argoproj.io", "Rollout"]]
    assert row[3:6] == [f"{MODEL}-model-server", "Synced", "Healthy"], row
    runs = kubectl_json("get", "analysisruns", "-n", namespace_of("prod"))["items"]
    mine = [r for r in runs if r["metadata"]["name"].startswith(f"{MODEL}-model-server-")]
    assert sorted(r["status"]["phase"] for r in mine) == ["Successful", "Successful"], [
        r["status"] for r in mine
    ]
    show(
        f"kubectl argo rollouts get rollout {MODEL}-model-server -n models-prod",
        kubectl("argo", "rollouts", "get", "rollout", f"{MODEL}-model-server", "-n", namespace_of("prod")),
    )
    assert predict("prod", MODEL, headers={"Authorization": f"Bearer {TOKEN}"})["model_version"] == "2.0.0"
    assert serving_version("prod", REGRESSOR) == "1.0.0"


def test_guard_rails_hold_in_the_controllers(platform: Platform) -> None:
    """A model file deleted: its Application goes, its Deployment stays (preserveResourcesOnDeletion).
    An environment that points at a namespace outside the models project, and an Application applied by
    hand that tries one: Argo CD refuses both, says why, and deploys nothing there."""
    (platform.repo.path / f"environments/dev/models/{REGRESSOR}.yaml").unlink()
    rogue = platform.repo.read_yaml("environments/staging/env.yaml")
    rogue["destination"]["namespace"] = "kube-system"
    platform.repo.write_yaml("environments/rogue/env.yaml", rogue)
    (platform.repo.path / "environments/rogue/models").mkdir()
    shutil.copy(
        platform.repo.path / f"environments/staging/models/{MODEL}.yaml",
        platform.repo.path / f"environments/rogue/models/{MODEL}.yaml",
    )
    shutil.copy(
        platform.repo.path / "environments/staging/values.yaml",
        platform.repo.path / "environments/rogue/values.yaml",
    )
    platform.push(f"remove {REGRESSOR} from dev; an environment in kube-system")

    wait_until(
        lambda: f"dev-{REGRESSOR}" not in applications(),
        SYNC_TIMEOUT,
        f"dev-{REGRESSOR} to be deleted",
        interval=2,
    )
    assert serving_version("dev", REGRESSOR) == "1.0.0", "the Deployment outlives its Application"

    def refused(name: str) -> str | None:
        """The message Argo CD gives for refusing the rogue Application (on it or on the ApplicationSet)."""
        found = [
            c["message"]
            for c in conditions(kubectl_json("get", "applicationset", "-n", ARGOCD_NAMESPACE, "models"))
            if c["type"] == "ErrorOccurred" and c["status"] == "True" and "kube-system" in c["message"]
        ]
        app = applications().get(name)
        found += [c["message"] for c in conditions(app or {}) if c["type"] == "InvalidSpecError"]
        return found[0] if found else None

    message = wait_until(
        lambda: refused(f"rogue-{MODEL}"), SYNC_TIMEOUT, "Argo CD to refuse rogue-iris-classifier", interval=2
    )
    show(f"kubectl -n argocd get application rogue-{MODEL}  # .status.conditions", message)
    assert "kube-system" in message and "models" in message, message
    assert not kubectl_json(
        "get", "deployments", "-n", "kube-system", "-l", f"app.kubernetes.io/instance={MODEL}"
    )["items"]

    by_hand = application(f"dev-{MODEL}")
    for key in (
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "ownerReferences",
        "managedFields",
    ):
        by_hand["metadata"].pop(key, None)
    by_hand["metadata"]["name"] = "by-hand"
    by_hand["metadata"]["labels"] = {}
    by_hand["spec"]["destination"]["namespace"] = "monitoring"
    by_hand.pop("status", None)
    by_hand.pop("operation", None)
    kubectl("apply", "-n", ARGOCD_NAMESPACE, "-f", "-", input=json.dumps(by_hand))
    message = wait_until(
        lambda: next(
            (c["message"] for c in conditions(application("by-hand")) if c["type"] == "InvalidSpecError"),
            None,
        ),
        SYNC_TIMEOUT,
        "Argo CD to refuse the Application applied by hand",
        interval=2,
    )
    show("kubectl -n argocd get application by-hand  # .status.conditions", message)
    assert "monitoring" in message and "models" in message, message
    assert not kubectl_json(
        "get", "deployments", "-n", "monitoring", "-l", f"app.kubernetes.io/instance={MODEL}"
    )["items"]
    kubectl("delete", "application", "-n", ARGOCD_NAMESPACE, "by-hand")


def test_a_malformed_model_file_fails_the_applicationset_and_breaks_no_model(platform: Platform) -> None:
    before = set(applications())
    platform.repo.write_yaml("environments/dev/models/unnamed.yaml", {"model": {"version": "1.0.0"}})
    sha = platform.push("a model file without a name")
    start = time.monotonic()

    def error() -> str | None:
        appset = kubectl_json("get", "applicationset", "-n", ARGOCD_NAMESPACE, "models")
        return next(
            (
                c["message"]
                for c in conditions(appset)
                if c["type"] == "ErrorOccurred" and c["status"] == "True" and "name" in c["message"]
            ),
            None,
        )

    message = wait_until(
        error, SYNC_TIMEOUT, "the ApplicationSet to report the file without a name", interval=2
    )
    show("kubectl -n argocd get applicationset models  # .status.conditions", message)
    print(f"the ApplicationSet reported it {time.monotonic() - start:.0f} s after the push")
    assert set(applications()) == before, "no Application was created or deleted"
    assert not any(n.endswith("-") or "no value" in n for n in applications())
    wait_synced(f"dev-{MODEL}", sha)  # dev still follows the newest commit
    assert serving_version("dev", MODEL) == "2.0.0"

    # While the ApplicationSet reports an error, the root Application that owns it is Degraded: that is
    # how the mistake shows on Argo CD's front page.
    root = wait_until(
        lambda: (lambda a: a if sync_status(a)[1] == "Degraded" else None)(application(ROOT_APP)),
        SYNC_TIMEOUT,
        "the root Application to show the ApplicationSet's error",
        interval=2,
    )
    show(
        f"kubectl -n argocd get application {ROOT_APP}  # .status.health",
        json.dumps(root["status"]["health"]),
    )

    # The fix is a commit too: without the nameless file and the rogue environment the error clears,
    # the refused Application goes, and every Application, the root included, settles Healthy. (Right
    # after a rollout Argo CD may show an HPA, and so its Application, Degraded for a while: the HPA
    # has no CPU metric for the new pod yet.)
    (platform.repo.path / "environments/dev/models/unnamed.yaml").unlink()
    shutil.rmtree(platform.repo.path / "environments/rogue")
    fixed = platform.push("remove the nameless model file and the rogue environment")
    # After an error the ApplicationSet controller retries in 3 minutes, not at its 10 s requeue; a
    # refresh request (what a Git webhook would send) makes it read the fixed commit now.
    out = kubectl(
        "-n",
        ARGOCD_NAMESPACE,
        "annotate",
        "applicationset",
        "models",
        "argocd.argoproj.io/application-set-refresh=true",
        "--overwrite",
    )
    show(
        "kubectl -n argocd annotate applicationset models argocd.argoproj.io/application-set-refresh=true",
        out,
    )

    def settled() -> bool:
        apps = applications()
        appset = kubectl_json("get", "applicationset", "-n", ARGOCD_NAMESPACE, "models")
        return (
            not [c for c in conditions(appset) if c["type"] == "ErrorOccurred" and c["status"] == "True"]
            and f"rogue-{MODEL}" not in apps
            and (apps[ROOT_APP].get("status") or {}).get("sync", {}).get("revision") == fixed
            and all(sync_status(a)[1] == "Healthy" for a in apps.values())
        )

    start = time.monotonic()
    wait_until(settled, SYNC_TIMEOUT, "the error to clear and every Application to be Healthy", interval=3)
    print(f"settled {time.monotonic() - start:.0f} s after the fix was pushed")
    show("kubectl -n argocd get applications", kubectl("-n", ARGOCD_NAMESPACE, "get", "applications"))
