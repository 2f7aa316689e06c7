"""model-release.yml's optional bucket step, run for real against SeaweedFS: the release archive lands in
the bucket byte for byte, and the step checks push wrote the sha256 the release published."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from support import emulators
from support.buckets import target
from support.hostile import sha256
from support.paths import ROOT

pytestmark = pytest.mark.slow

WORKFLOW = ROOT / ".github" / "workflows" / "model-release.yml"


def _step() -> dict[str, object]:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["release"]["steps"]
    return next(s for s in steps if s.get("name") == "Publish to the model bucket")


def test_the_release_step_publishes_the_release_archive_to_the_bucket(
    s3: emulators.Emulator, iris_bundle: Path, tmp_path: Path
) -> None:
    step = _step()
    assert step["if"] == "vars.MODEL_BUCKET != ''"
    # The workflow runs in a checkout with .venv and build/release/ (the build step's output).
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    archive = tmp_path / "build" / "release" / "iris-classifier-1.0.0.tar.gz"
    made = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "model-server"), "archive", str(iris_bundle), str(archive)],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOOGLE_", "AZURE_"))}
    env.update(
        {
            "MODEL_BUCKET": "s3://models/releases/",
            "MODEL_BUCKET_ENDPOINT": s3.endpoint,
            "ARCHIVE": "build/release/iris-classifier-1.0.0.tar.gz",
            "SHA256": sha256(archive.read_bytes()),
            **s3.admin_env,
            # Unset secrets reach the step as empty variables: they must not count as credentials.
            "GOOGLE_SERVICE_ACCOUNT_KEY": "",
            "AZURE_STORAGE_ACCOUNT_KEY": "",
        }
    )
    ran = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", str(step["run"])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"sha256 {env['SHA256']}" in ran.stdout
    stored = target(s3).get("releases/iris-classifier-1.0.0.tar.gz")
    assert stored == archive.read_bytes()
