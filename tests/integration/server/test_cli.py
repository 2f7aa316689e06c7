"""The `model-server` command as a user runs it: package from a training script or a skops file and a
CSV, then validate; `demo` builds the same bytes again; validate says what is wrong with a bad bundle."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import skops.io as sio
from model_server.demo import sales_regressor
from support.paths import ROOT

CLI = str(ROOT / ".venv" / "bin" / "model-server")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / bundle.name
    shutil.copytree(bundle, dst)
    return dst


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_demo_bundles_are_reproducible(tmp_path: Path, demo_bundles: Path) -> None:
    result = run("demo", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in ("iris-classifier", "sales-regressor"):
        for f in ("model.skops", "metadata.json"):
            assert sha(tmp_path / name / f) == sha(demo_bundles / name / f), f"{name}/{f}"


TRAIN_PY = """
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

def build():
    X = pd.DataFrame({"plan": ["basic", "pro", "basic", "pro", "team", "team"] * 10,
                      "tenure_months": [1.0, 30.0, 3.0, 40.0, 12.0, 2.0] * 10})
    y = ["churn", "stay", "churn", "stay", "stay", "churn"] * 10
    pre = ColumnTransformer([("plan", OneHotEncoder(), ["plan"]),
                             ("num", StandardScaler(), ["tenure_months"])])
    return make_pipeline(pre, LogisticRegression()).fit(X, y), X
"""


def test_cli_package_from_python_then_validate(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN_PY))
    out = tmp_path / "bundles" / "churn"
    result = run(
        "package",
        "--from-python",
        "train.py:build",
        "--name",
        "churn",
        "--version",
        "1.0.0",
        "--out",
        str(out),
        "--archive",
        str(tmp_path / "churn.tar.gz"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "classifier, 2 features" in result.stdout
    validated = run("validate", str(out))
    assert validated.returncode == 0, validated.stderr
    report = json.loads(validated.stdout)
    assert report["name"] == "churn" and report["prediction"] in ("churn", "stay")
    assert report["features"] == {"plan": "string", "tenure_months": "float"}
    # the archive unpacks to the same bundle, after the sha256 check
    digest = sha(tmp_path / "churn.tar.gz")
    dest = tmp_path / "fetched"
    fetched = run(
        "fetch", "--url", (tmp_path / "churn.tar.gz").as_uri(), "--sha256", digest, "--dest", str(dest)
    )
    assert fetched.returncode == 0, fetched.stderr
    assert sha(dest / "model.skops") == sha(out / "model.skops")
    bad = run(
        "fetch",
        "--url",
        (tmp_path / "churn.tar.gz").as_uri(),
        "--sha256",
        "0" * 64,
        "--dest",
        str(tmp_path / "nope"),
    )
    assert bad.returncode == 1 and "refusing to unpack" in bad.stderr


def test_cli_package_from_skops_and_csv(tmp_path: Path) -> None:
    model, X = sales_regressor()
    sio.dump(model, tmp_path / "model.skops")
    X.head(300).to_csv(tmp_path / "train.csv", index=False)
    out = tmp_path / "sales"
    result = run(
        "package",
        "--skops",
        str(tmp_path / "model.skops"),
        "--reference",
        str(tmp_path / "train.csv"),
        "--name",
        "sales",
        "--version",
        "2.1.0",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert [f["dtype"] for f in meta["features"]] == ["string", "float", "float", "int"]
    assert run("validate", str(out)).returncode == 0


def test_cli_validate_says_what_is_wrong(tmp_path: Path, iris_bundle: Path) -> None:
    bundle = copy(iris_bundle, tmp_path)
    (bundle / "model.skops").write_bytes(b"not a zip")
    result = run("validate", str(bundle))
    assert result.returncode == 1
    assert "checksum mismatch" in result.stderr and "Traceback" not in result.stderr
