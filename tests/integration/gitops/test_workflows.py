"""The GitHub workflows: pinned actions, least privilege, and the model release path run for real.

actionlint and zizmor check the workflows in `make lint`; these tests hold the project's own rules
that neither tool enforces, and run the model release build exactly as model-release.yml does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.paths import ENVIRONMENTS, ROOT
from support.tools import tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(?:\s+#\s*(\S+))?", re.M)
PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
EXPECTED = {"ci.yml", "image.yml", "chart.yml", "e2e.yml", "deploy.yml", "model-release.yml"}


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def test_the_workflows_the_issue_asks_for_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= EXPECTED


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_its_version(path: Path) -> None:
    for ref, version in USES.findall(path.read_text()):
        if ref.startswith("./"):
            continue  # a workflow of this repository, at the same commit
        assert PIN.match(ref), f"{path.name}: {ref} is not pinned by a full commit SHA"
        assert version and re.match(r"^v?[0-9]+(\.[0-9]+)*$", version), (
            f"{path.name}: {ref} lacks its `# vX.Y.Z` comment"
        )


def test_one_action_is_pinned_to_the_same_commit_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        for ref, version in USES.findall(path.read_text()):
            if not ref.startswith("./"):
                action, sha = ref.split("@")
                pins.setdefault(action, set()).add(f"{sha} {version}")
    assert pins, "no actions found"
    assert {a: s for a, s in pins.items() if len(s) > 1} == {}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_start_empty_and_each_job_names_its_own(path: Path) -> None:
    workflow = load(path)
    assert workflow.get("permissions") == {}, f"{path.name}: set `permissions: {{}}` at the top"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} must state its permissions"
        assert job["permissions"] != "write-all"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_reach_scripts_only_through_env(path: Path) -> None:
    workflow = load(path)
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            assert "secrets." not in step.get("run", ""), f"{path.name}/{name}: a secret inlined into run:"
            assert "${{" not in step.get("run", ""), (
                f"{path.name}/{name}: expressions in run: are injection points; pass them through env:"
            )
    assert not re.search(r"gh[pousr]_[A-Za-z0-9]{20,}", path.read_text()), f"{path.name} holds a token"


def test_only_workflows_that_publish_can_write() -> None:
    writers = {}
    for path in WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            scopes = {k for k, v in (job.get("permissions") or {}).items() if v == "write"}
            if scopes:
                writers[f"{path.name}/{name}"] = scopes
    assert writers == {
        "image.yml/publish": {"packages", "id-token"},
        "image.yml/deploy": {"contents"},
        "deploy.yml/bump-dev": {"contents"},
        "chart.yml/release": {"packages", "id-token"},
        "model-release.yml/release": {"contents", "id-token"},
        "model-release.yml/pull-request": {"contents", "pull-requests"},
    }


def test_ci_runs_the_local_definition_with_full_history() -> None:
    ci = load(ROOT / ".github" / "workflows" / "ci.yml")
    steps = ci["jobs"]["test"]["steps"]
    assert [s["run"] for s in steps if "run" in s] == [".ci/run"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0  # the promotion check reads staging's history


def test_model_release_tags_match_what_the_build_script_accepts() -> None:
    release = load(ROOT / ".github" / "workflows" / "model-release.yml")
    assert release["on"]["push"]["tags"] == ["models/*/*"]
    script = ROOT / ".github" / "scripts" / "build-model-release.sh"
    for tag in ("models/Iris/1.0.0", "models/iris-classifier/1.0", "v1.0.0"):
        done = subprocess.run(
            [str(script), tag, "out"], capture_output=True, text=True, check=False, cwd=ROOT
        )
        assert done.returncode == 1 and "is not models/<name>/<semantic version>" in done.stderr


def test_a_model_release_builds_reproducibly_and_lands_in_dev(tmp_path: Path) -> None:
    """model-release.yml's two steps, for real: build the archive, then set it in dev with promote.py."""
    outputs = tmp_path / "github_output"
    model_server = Path(sys.executable).parent / "model-server"
    env = dict(os.environ, GITHUB_OUTPUT=str(outputs), MODEL_SERVER=str(model_server))
    done = subprocess.run(
        [
            str(ROOT / ".github" / "scripts" / "build-model-release.sh"),
            "models/iris-classifier/1.3.0",
            str(tmp_path / "release"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    facts = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    archive = Path(facts["archive"])
    assert facts["name"] == "iris-classifier" and facts["version"] == "1.3.0"
    assert (archive.parent / f"{archive.name}.sha256").read_text().split()[0] == facts["sha256"]
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["metadata.json", "model.skops"]
        meta = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
    assert (meta["name"], meta["version"]) == ("iris-classifier", "1.3.0")

    url = (
        "https://github.com/model-server/model-server/releases/download/models/iris-classifier/1.3.0/"
        "iris-classifier-1.3.0.tar.gz"
    )
    repo = tmp_path / "repo"
    shutil.copytree(ENVIRONMENTS, repo / "environments", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "charts" / "model-server", repo / "charts" / "model-server")
    done = subprocess.run(
        [
            sys.executable,
            str(ENVIRONMENTS / "promote.py"),
            "--root",
            str(repo),
            "set-model",
            "--env",
            "dev",
            "--model",
            facts["name"],
            "--version",
            facts["version"],
            "--url",
            url,
            "--sha256",
            facts["sha256"],
            "--helm",
            tool("helm"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    dev = yaml.safe_load((repo / "environments" / "dev" / "models" / "iris-classifier.yaml").read_text())
    assert dev["model"]["source"] == {"type": "url", "url": {"uri": url, "sha256": facts["sha256"]}}
