"""environments/promote.py on a throwaway clone of environments/ and the chart, with real git history."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.paths import CHART, ENVIRONMENTS
from support.tools import tool

PROMOTE = ENVIRONMENTS / "promote.py"
SHA_A = "a" * 64
SHA_B = "b" * 64
DIGEST = "sha256:" + "c" * 64


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path

    def git(self, *args: str) -> str:
        identity = ["-c", "user.name=test", "-c", "user.email=t@example.com"]
        done = subprocess.run(
            ["git", "-C", str(self.path), *identity, *args], capture_output=True, text=True, check=True
        )
        return done.stdout

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def promote(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, str(PROMOTE), "--root", str(self.path), *args]
        if args[0] in ("promote", "set-model", "set-image"):
            cmd += ["--helm", tool("helm")]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    def file(self, env: str, model: str) -> Path:
        return self.path / "environments" / env / "models" / f"{model}.yaml"

    def values(self, env: str, model: str) -> dict:
        return yaml.safe_load(self.file(env, model).read_text())

    def changed(self) -> list[str]:
        return self.git("status", "--porcelain").split("\n")[:-1]


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    shutil.copytree(ENVIRONMENTS, tmp_path / "environments", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(CHART, tmp_path / "charts" / "model-server")
    r = Repo(tmp_path)
    r.git("init", "-q", "-b", "main")
    r.commit("environments as in the repository")
    return r


def set_model_in_dev(
    repo: Repo, version: str, url: str, sha: str = SHA_A
) -> subprocess.CompletedProcess[str]:
    return repo.promote(
        "set-model",
        "--env",
        "dev",
        "--model",
        "iris-classifier",
        "--version",
        version,
        "--url",
        url,
        "--sha256",
        sha,
    )


def release_to_dev(repo: Repo, version: str = "1.3.0", sha: str = SHA_A) -> None:
    url = f"https://github.com/model-server/model-server/releases/download/models/iris-classifier/{version}/x.tar.gz"
    done = set_model_in_dev(repo, version, url, sha)
    assert done.returncode == 0, done.stderr
    repo.commit(f"release iris-classifier {version} to dev")


def promote_ok(repo: Repo, source: str, target: str) -> None:
    done = repo.promote("promote", "--model", "iris-classifier", "--from", source, "--to", target)
    assert done.returncode == 0, done.stderr


def test_promotion_copies_the_release_and_changes_nothing_else(repo: Repo) -> None:
    release_to_dev(repo)
    done = repo.promote("set-image", "--env", "dev", "--tag", "3f1c2a9", "--digest", DIGEST)
    assert done.returncode == 0, done.stderr
    repo.commit("dev runs image 3f1c2a9")
    before = repo.file("staging", "iris-classifier").read_text()

    done = repo.promote("promote", "--model", "iris-classifier", "--from", "dev", "--to", "staging")
    assert done.returncode == 0, done.stderr
    assert "staging/iris-classifier: 1.0.0" in done.stdout and "-> 1.3.0" in done.stdout

    # Exactly one file changed, and in it only the release lines; comments and layout stay.
    assert repo.changed() == [" M environments/staging/models/iris-classifier.yaml"]
    after = repo.file("staging", "iris-classifier").read_text()
    diff = repo.git("diff", "-U0", "--", "environments")
    removed = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert removed == ['version: "1.0.0"', "type: image", 'tag: "0.1.0"']
    assert added == [
        'version: "1.3.0"',
        "type: url",
        "url:",
        f'uri: "{repo.values("dev", "iris-classifier")["model"]["source"]["url"]["uri"]}"',
        f'sha256: "{SHA_A}"',
        'tag: "3f1c2a9"',
        f'digest: "{DIGEST}"',
    ]
    assert [ln for ln in before.splitlines() if ln.startswith("#")] == [
        ln for ln in after.splitlines() if ln.startswith("#")
    ]
    staging, dev = repo.values("staging", "iris-classifier"), repo.values("dev", "iris-classifier")
    assert staging["model"] == dev["model"] and staging["image"] == dev["image"]


def test_a_promotion_into_a_canary_environment_says_how_to_watch_abort_and_promote(repo: Repo) -> None:
    """prod releases by canary (rollout.strategy in its values.yaml), staging by rolling update: only the
    promotion into prod prints the Argo Rollouts commands, for the Rollout the chart names."""
    release_to_dev(repo)
    to_staging = repo.promote("promote", "--model", "iris-classifier", "--from", "dev", "--to", "staging")
    assert to_staging.returncode == 0, to_staging.stderr
    assert "canary" not in to_staging.stdout
    repo.commit("promote to staging")
    to_prod = repo.promote("promote", "--model", "iris-classifier", "--from", "staging", "--to", "prod")
    assert to_prod.returncode == 0, to_prod.stderr
    lines = to_prod.stdout.splitlines()
    assert "prod releases by canary" in to_prod.stdout
    for verb in ("get rollout", "abort", "promote"):
        assert any(
            f"kubectl argo rollouts {verb} iris-classifier-model-server -n models-prod" in ln for ln in lines
        ), (
            verb,
            lines,
        )


def test_promoting_twice_is_a_no_op(repo: Repo) -> None:
    done = repo.promote("promote", "--model", "iris-classifier", "--from", "staging", "--to", "prod")
    assert done.returncode == 0, done.stderr
    assert "nothing to do" in done.stdout
    assert repo.changed() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "fraud-scorer", "--from", "dev", "--to", "staging"],
            "unknown model 'fraud-scorer' in dev (known: iris-classifier, sales-regressor)",
        ),
        (
            ["--model", "iris-classifier", "--from", "dev", "--to", "qa"],
            "unknown environment 'qa' (known: dev, staging, prod)",
        ),
        (["--model", "iris-classifier", "--from", "test", "--to", "prod"], "unknown environment 'test'"),
        (
            ["--model", "iris-classifier", "--from", "dev", "--to", "prod"],
            "prod is promoted from staging, not dev",
        ),
        (["--model", "iris-classifier", "--from", "prod", "--to", "dev"], "dev is not promoted into"),
        (
            ["--model", "iris-classifier", "--from", "staging", "--to", "prod", "--version", "1.2.0"],
            "version 1.2.0 of iris-classifier was never in staging",
        ),
    ],
)
def test_promotion_refuses(repo: Repo, args: list[str], message: str) -> None:
    done = repo.promote("promote", *args)
    assert done.returncode == 1
    assert message in done.stderr
    assert repo.changed() == []


def test_a_version_from_the_source_history_can_be_promoted_again(repo: Repo) -> None:
    """Rolling prod back: 1.0.0 left staging long ago but is in its git history."""
    release_to_dev(repo)
    promote_ok(repo, "dev", "staging")
    repo.commit("iris-classifier 1.3.0 to staging")
    promote_ok(repo, "staging", "prod")
    repo.commit("iris-classifier 1.3.0 to prod")

    done = repo.promote(
        "promote", "--model", "iris-classifier", "--from", "staging", "--to", "prod", "--version", "1.0.0"
    )
    assert done.returncode == 0, done.stderr
    assert (
        repo.values("prod", "iris-classifier")["model"]
        == yaml.safe_load(repo.git("show", "HEAD~3:environments/staging/models/iris-classifier.yaml"))[
            "model"
        ]
    )
    assert repo.promote("check").returncode == 0


def test_check_fails_when_prod_runs_a_version_staging_never_ran(repo: Repo) -> None:
    prod = repo.file("prod", "iris-classifier")
    prod.write_text(prod.read_text().replace('version: "1.0.0"', 'version: "1.4.0"'))
    repo.commit("hand edit straight into prod")
    done = repo.promote("check")
    assert done.returncode == 1
    assert "prod/iris-classifier runs 1.4.0" in done.stderr
    assert "never deployed to staging" in done.stderr


def test_check_fails_when_the_version_matches_but_the_bundle_does_not(repo: Repo) -> None:
    """Same version number, another archive: that is not what staging tested."""
    release_to_dev(repo, sha=SHA_A)
    promote_ok(repo, "dev", "staging")
    repo.commit("1.3.0 to staging")
    promote_ok(repo, "staging", "prod")
    prod = repo.file("prod", "iris-classifier")
    prod.write_text(prod.read_text().replace(SHA_A, SHA_B))
    done = repo.promote("check")
    assert done.returncode == 1 and "prod/iris-classifier runs 1.3.0" in done.stderr


def test_check_accepts_a_version_that_left_staging_since(repo: Repo) -> None:
    """Staging moved on to 1.3.0 after prod took 1.0.0: the history still shows 1.0.0 ran in staging."""
    release_to_dev(repo)
    promote_ok(repo, "dev", "staging")
    repo.commit("1.3.0 to staging")
    assert repo.values("prod", "iris-classifier")["model"]["version"] == "1.0.0"
    assert repo.promote("check").returncode == 0
    # Without the history the same tree fails: the check really reads `git log`.
    shutil.rmtree(repo.path / ".git")
    done = repo.promote("check")
    assert done.returncode == 1 and "no git history" in done.stderr


def test_set_model_and_set_image_only_touch_the_entry_environment(repo: Repo) -> None:
    for args in (
        ["set-model", "--env", "staging", "--model", "iris-classifier", "--version", "2.0.0", "--image"],
        ["set-image", "--env", "prod", "--tag", "abc"],
    ):
        done = repo.promote(*args)
        assert done.returncode == 1
        assert "only by promotion" in done.stderr
    done = repo.promote("set-image", "--env", "dev", "--tag", "3f1c2a9", "--digest", DIGEST)
    assert done.returncode == 0, done.stderr
    assert sorted(repo.changed()) == [
        " M environments/dev/models/iris-classifier.yaml",
        " M environments/dev/models/sales-regressor.yaml",
    ]
    assert repo.values("dev", "sales-regressor")["image"] == {"tag": "3f1c2a9", "digest": DIGEST}


def test_a_first_release_of_a_new_model_creates_its_file(repo: Repo) -> None:
    done = repo.promote(
        "set-model",
        "--env",
        "dev",
        "--model",
        "churn-predictor",
        "--version",
        "0.1.0",
        "--url",
        "https://example.com/churn-predictor-0.1.0.tar.gz",
        "--sha256",
        SHA_A,
    )
    assert done.returncode == 0, done.stderr
    values = repo.values("dev", "churn-predictor")
    assert values["model"] == {
        "name": "churn-predictor",
        "version": "0.1.0",
        "source": {
            "type": "url",
            "url": {"uri": "https://example.com/churn-predictor-0.1.0.tar.gz", "sha256": SHA_A},
        },
    }
    assert values["image"] == repo.values("dev", "iris-classifier")["image"]


@pytest.mark.parametrize(
    "uri",
    [
        "http://bundles.models-dev.svc.cluster.local:8080/iris-classifier-1.3.0.tar.gz",
        "http://bundles.releases.svc/iris-classifier-1.3.0.tar.gz",
    ],
)
def test_plain_http_is_accepted_from_a_service_of_the_cluster(repo: Repo, uri: str) -> None:
    done = set_model_in_dev(repo, "1.3.0", uri)
    assert done.returncode == 0, done.stderr
    assert repo.values("dev", "iris-classifier")["model"]["source"] == {
        "type": "url",
        "url": {"uri": uri, "sha256": SHA_A},
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "1.3", "--image"], "not a semantic version"),
        (["--version", "1.3.0", "--url", "http://example.com/x.tar.gz", "--sha256", SHA_A], "https://"),
        (
            ["--version", "1.3.0", "--url", "http://bundles.svc.example.com/x.tar.gz", "--sha256", SHA_A],
            "https://",
        ),
        (
            ["--version", "1.3.0", "--url", "https://example.com/x.tar.gz", "--sha256", "abc"],
            "64 lower-case hex",
        ),
        (["--version", "1.3.0", "--oci", "ghcr.io/model-server/models/iris:1.3.0"], "pinned by digest"),
    ],
)
def test_set_model_refuses_malformed_releases(repo: Repo, args: list[str], message: str) -> None:
    done = repo.promote("set-model", "--env", "dev", "--model", "iris-classifier", *args)
    assert done.returncode == 1 and message in done.stderr
    assert repo.changed() == []


def test_a_release_the_chart_rejects_is_never_written(repo: Repo) -> None:
    """The render check: staging's own values make the chart fail, so the promotion writes nothing."""
    staging = repo.file("staging", "iris-classifier")
    staging.write_text(staging.read_text() + "replicaCount: three\n")
    repo.commit("a broken staging file")
    release_to_dev(repo)
    done = repo.promote("promote", "--model", "iris-classifier", "--from", "dev", "--to", "staging")
    assert done.returncode == 1
    assert "the chart rejects the result, nothing was written" in done.stderr
    assert "replicaCount" in done.stderr
    assert repo.changed() == []


def _editor():  # environments/promote.py is a script, not a package: load it by path
    spec = importlib.util.spec_from_file_location("promote", PROMOTE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["promote"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_round_trip_editor_rewrites_no_line_it_was_not_asked_to() -> None:
    """Every values file in environments/, loaded and written back with its own release, is unchanged
    byte for byte: comments, blank lines, quoting and key order all survive ruamel.yaml."""
    promote = _editor()
    files = sorted(ENVIRONMENTS.glob("*/models/*.yaml"))
    assert files
    for path in files:
        text = path.read_text()
        release = promote.release_of(yaml.safe_load(text))
        assert promote.apply_release(text, release, str(path)) == text, path


def test_a_comment_block_after_the_release_stays_after_it() -> None:
    """A digest appended to `image` goes before the comment that followed `image.tag`, and removing
    it puts the file back as it was."""
    promote = _editor()
    text = (
        "model:\n  name: m\n  version: '1.0.0'\nimage:\n  tag: \"0.1.0\"\n\n"
        "# Switched on for this release only.\nmonitoring:\n  serviceMonitor:\n    enabled: true\n"
    )
    release = promote.release_of(yaml.safe_load(text))
    with_digest = promote.apply_release(text, {**release, ("image", "digest"): DIGEST}, "m.yaml")
    assert with_digest.splitlines()[4:8] == [
        '  tag: "0.1.0"',
        f'  digest: "{DIGEST}"',
        "",
        "# Switched on for this release only.",
    ]
    assert promote.apply_release(with_digest, release, "m.yaml") == text
