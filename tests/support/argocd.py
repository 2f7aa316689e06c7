"""Helpers of the GitOps cluster test (tests/e2e/test_gitops.py): a Git server in the cluster that the
test pushes this repository to, a working copy of it, and Argo CD's objects as its controllers report
them (kubectl against the Application, ApplicationSet and AppProject resources, and the argocd CLI in
--core mode, which talks to the Kubernetes API like kubectl).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .cluster import RESTRICTED_CONTAINER, apply, condition, kubectl, kubectl_json, tool, wait_until
from .paths import ROOT
from .tools import tools_env

ARGOCD_NAMESPACE = "argocd"
GIT_PORT = 8080
# The repository's name on the Git server (cluster/images/git-server creates it, empty).
GIT_REPOSITORY = "platform.git"
# Who commits in the test's working copy.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "e2e",
    "GIT_AUTHOR_EMAIL": "e2e@model-server.invalid",
    "GIT_COMMITTER_NAME": "e2e",
    "GIT_COMMITTER_EMAIL": "e2e@model-server.invalid",
}


def git_server(image: str) -> list[dict[str, Any]]:
    """The pod and Service `git` serving an empty bare repository GIT_REPOSITORY over smart HTTP."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "git", "labels": {"app": "git"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"fsGroup": 65532},
            "containers": [
                {
                    "name": "git",
                    "image": image,
                    "args": ["-root", "/srv/git", "-listen", f":{GIT_PORT}", "-init", GIT_REPOSITORY],
                    "env": [{"name": "HOME", "value": "/tmp"}],
                    "ports": [{"containerPort": GIT_PORT}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": GIT_PORT}, "periodSeconds": 1},
                    "securityContext": RESTRICTED_CONTAINER,
                    "resources": {
                        "requests": {"cpu": "20m", "memory": "32Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                    "volumeMounts": [
                        {"name": "repos", "mountPath": "/srv/git"},
                        {"name": "tmp", "mountPath": "/tmp"},
                    ],
                }
            ],
            "volumes": [
                {"name": "repos", "emptyDir": {"sizeLimit": "256Mi"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "git"},
        "spec": {"selector": {"app": "git"}, "ports": [{"port": GIT_PORT}]},
    }
    return [pod, service]


def start_git_server(namespace: str, image: str) -> str:
    """Start `git_server` in ``namespace`` and wait until it serves; returns the repository's URL as
    Argo CD's pods reach it (the cluster's DNS name of the Service)."""
    apply(namespace, *git_server(image))
    wait_until(
        lambda: condition(kubectl_json("get", "pod", "-n", namespace, "git"), "Ready") == "True",
        120,
        "the Git server to serve",
    )
    return f"http://git.{namespace}.svc.cluster.local:{GIT_PORT}/{GIT_REPOSITORY}"


class WorkingCopy:
    """A Git working copy of this repository (the files `git ls-files` lists, as they are on disk, in
    one first commit) that pushes to the in-cluster server, as a platform engineer's clone of a fork."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of_this_repository(cls, path: Path) -> WorkingCopy:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
        ).stdout.decode()
        for name in filter(None, listed.split("\0")):
            source = ROOT / name
            if source.is_file():  # a tracked file deleted in the working tree is left out
                (path / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, path / name)
        copy = cls(path)
        copy.git("init", "--quiet", "--initial-branch=main")
        copy.commit("the platform, as this checkout has it")
        return copy

    def git(self, *args: str) -> str:
        env = {**os.environ, **GIT_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.path.parent)}
        done = subprocess.run(["git", "-C", str(self.path), *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(
                f"git {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done.stdout

    def commit(self, message: str) -> str:
        """Commit every change of the working tree; returns the new commit's SHA."""
        self.git("add", "--all")
        self.git("commit", "--quiet", "--message", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def push(self, url: str) -> str:
        """Push main to ``url`` (a port-forward of the Git server); returns the pushed SHA."""
        assert url.startswith("http://127.0.0.1:"), f"tests only call loopback: {url}"
        self.git("push", "--quiet", f"{url}/{GIT_REPOSITORY}", "main")
        return self.head()

    def promote(self, *args: str) -> str:
        """environments/promote.py of the working copy (what `make promote` runs), with its output."""
        done = subprocess.run(
            [sys.executable, "environments/promote.py", *args],
            cwd=self.path,
            env=tools_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"promote.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done.stdout + done.stderr

    def read_yaml(self, name: str) -> Any:
        return yaml.safe_load((self.path / name).read_text())

    def write_yaml(self, name: str, data: Any) -> None:
        (self.path / name).parent.mkdir(parents=True, exist_ok=True)
        (self.path / name).write_text(yaml.safe_dump(data, sort_keys=False))


def applications() -> dict[str, dict[str, Any]]:
    """Every Application in Argo CD's namespace, by name."""
    items = kubectl_json("get", "applications.argoproj.io", "-n", ARGOCD_NAMESPACE)["items"]
    return {a["metadata"]["name"]: a for a in items}


def application(name: str) -> dict[str, Any]:
    return kubectl_json("get", "applications.argoproj.io", "-n", ARGOCD_NAMESPACE, name)


def sync_status(app: dict[str, Any]) -> tuple[str | None, str | None]:
    """(sync status, health status) as Argo CD reports them: ("Synced", "Healthy")."""
    status = app.get("status") or {}
    return (status.get("sync") or {}).get("status"), (status.get("health") or {}).get("status")


def conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("status") or {}).get("conditions") or [])


def argocd(*args: str, kubeconfig: Path, timeout: float = 300, ok: tuple[int, ...] = (0,)) -> str:
    """The argocd CLI in --core mode (no Argo CD API server: it reads and writes the Application
    objects through the Kubernetes API), with a kubeconfig whose context namespace is Argo CD's."""
    env = {**tools_env(), "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    done = subprocess.run(
        [tool("argocd"), *args, "--core"], env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode not in ok:
        raise AssertionError(f"argocd {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def core_kubeconfig(path: Path) -> Path:
    """A copy of KUBECONFIG whose current context's namespace is Argo CD's, as `argocd --core` needs
    (the docs tell a user to set it with `kubectl config set-context --current --namespace=argocd`)."""
    shutil.copy(os.environ["KUBECONFIG"], path)
    subprocess.run(
        [tool("kubectl"), "config", "set-context", "--current", f"--namespace={ARGOCD_NAMESPACE}"],
        env={**tools_env(), "KUBECONFIG": str(path)},
        check=True,
        capture_output=True,
    )
    return path


def delete_platform(root: str) -> None:
    """Remove what the bootstrap created in Argo CD, so the next run starts from an empty Argo CD: the
    root Application first (else it would recreate the rest), the ApplicationSet, every Application,
    the AppProjects but `default`. Finalizers are cleared; what the Applications deployed is left to
    the deletion of its namespaces."""
    targets = [f"applications.argoproj.io/{root}"]
    for kind in ("applicationsets.argoproj.io", "applications.argoproj.io", "appprojects.argoproj.io"):
        targets += [
            n for n in kubectl("get", kind, "-n", ARGOCD_NAMESPACE, "-o", "name").split() if n not in targets
        ]
    for name in targets:
        if name == "appproject.argoproj.io/default":
            continue
        kubectl(
            "patch",
            name,
            "-n",
            ARGOCD_NAMESPACE,
            "--type",
            "merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
        )
        kubectl("delete", name, "-n", ARGOCD_NAMESPACE, "--wait=false", "--ignore-not-found", check=False)
