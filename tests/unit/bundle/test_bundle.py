"""Packaging (API and CLI), byte-reproducibility, metadata, and every refusal at load time."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from model_server.bundle.fetch import archive, fetch
from model_server.bundle.load import load_bundle
from model_server.bundle.package import package
from model_server.demo import iris_classifier, sales_regressor
from model_server.errors import BundleError
from model_server.settings import Settings
from sklearn.linear_model import LogisticRegression
from support.paths import TEST_MODELS

MODELS = TEST_MODELS


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / bundle.name
    shutil.copytree(bundle, dst)
    return dst


def test_same_estimator_gives_the_same_bytes(tmp_path: Path) -> None:
    model, X = sales_regressor()
    a = package(model, X, name="sales", version="1", out=tmp_path / "a")
    refit, X2 = sales_regressor()  # a fresh fit with the same seed, other Python object ids
    b = package(refit, X2, name="sales", version="1", out=tmp_path / "b")
    assert sha(a / "model.skops") == sha(b / "model.skops")
    assert sha(a / "metadata.json") == sha(b / "metadata.json")
    # the raw skops output differs between saves (object ids, timestamps); ours does not
    assert sio.dumps(model) != sio.dumps(refit)


def test_metadata_describes_the_model(sales_bundle: Path, iris_bundle: Path) -> None:
    meta = json.loads((sales_bundle / "metadata.json").read_text())
    assert meta["name"] == "sales-regressor" and meta["version"] == "1.0.0" and meta["task"] == "regressor"
    assert meta["input_kind"] == "dataframe"
    assert meta["features"] == [
        {"name": "region", "dtype": "string", "categories": ["east", "north", "south", "west"]},
        {"name": "price", "dtype": "float"},
        {"name": "advertising", "dtype": "float"},
        {"name": "store_size", "dtype": "int"},
    ]
    assert set(meta["versions"]) >= {"sklearn", "skops", "numpy"}
    assert meta["artifact"]["sha256"] == sha(sales_bundle / "model.skops")
    assert meta["untrusted_types"] == ["sklearn.tree._tree.Tree"]
    ref = meta["reference"]
    assert ref["rows"] == 2000
    region = ref["features"]["region"]
    assert region["kind"] == "categorical" and sum(region["counts"].values()) == 2000
    price = ref["features"]["price"]
    assert price["kind"] == "numeric" and len(price["edges"]) <= 9
    assert len(price["counts"]) == len(price["edges"]) + 1 and sum(price["counts"]) == 2000
    assert ref["prediction"]["kind"] == "numeric"
    iris = json.loads((iris_bundle / "metadata.json").read_text())
    assert iris["input_kind"] == "array" and iris["classes"] == ["setosa", "versicolor", "virginica"]
    assert iris["reference"]["prediction"]["kind"] == "categorical"
    assert sum(iris["reference"]["prediction"]["counts"].values()) == 150


def test_reference_bins_follow_the_contract() -> None:
    from model_server.bundle.reference import categorical_stat, numeric_stat

    stat = numeric_stat(np.arange(1, 101, dtype=float))
    # deciles 10.9 .. 90.1; bin 0 is (-inf, e1], the last bin (e9, inf)
    assert stat["edges"][0] == pytest.approx(10.9) and len(stat["edges"]) == 9
    assert stat["counts"] == [10] * 10
    assert numeric_stat(np.array([1.0] * 10))["edges"] == [1.0]
    cats = categorical_stat([f"v{i}" for i in range(60)] + ["v0"])
    assert len(cats["counts"]) == 51 and cats["counts"]["__other__"] == 10 and cats["counts"]["v0"] == 2


def test_package_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    model, X = iris_classifier()
    with pytest.raises(BundleError, match="must be lower-case"):
        package(model, X, name="Iris Model", version="1", out=tmp_path / "x")
    with pytest.raises(BundleError, match="not fitted"):
        package(LogisticRegression(), X, name="iris", version="1", out=tmp_path / "x")
    with pytest.raises(BundleError, match="fitted on 4 features, the reference data has 3"):
        package(model, X[:, :3], name="iris", version="1", out=tmp_path / "x")
    sales, frame = sales_regressor()
    with pytest.raises(BundleError, match="columns differ"):
        package(
            sales,
            frame[["price", "region", "advertising", "store_size"]],
            name="s",
            version="1",
            out=tmp_path / "x",
        )


# ---- refusals at load time ---------------------------------------------------------------------


def test_checksum_mismatch_refuses(tmp_path: Path, iris_bundle: Path) -> None:
    bundle = copy(iris_bundle, tmp_path)
    data = bytearray((bundle / "model.skops").read_bytes())
    data[-100] ^= 0xFF
    (bundle / "model.skops").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"checksum mismatch: model\.skops has sha256"):
        load_bundle(bundle, Settings())


def test_untrusted_types_refuse_naming_them_and_trusted_types_allow(tmp_path: Path) -> None:
    sys.path.insert(0, str(MODELS))
    try:
        from slowmodel import TRUST, SlowRegressor
    finally:
        sys.path.remove(str(MODELS))
    model = SlowRegressor(delay=0.0).fit(np.zeros((4, 2)), np.arange(4.0))
    bundle = package(model, np.zeros((4, 2)), name="slow", version="1", out=tmp_path / "slow")
    with pytest.raises(BundleError, match=r"not trusted: slowmodel\.SlowRegressor\. .*TRUSTED_TYPES"):
        load_bundle(bundle, Settings())
    loaded = load_bundle(bundle, Settings(trusted_types=(TRUST,)))
    assert type(loaded.estimator).__name__ == "SlowRegressor"


def test_the_bundle_cannot_whitelist_its_own_types(tmp_path: Path) -> None:
    # a bundle whose metadata claims it needs nothing still gets the artifact itself inspected
    sys.path.insert(0, str(MODELS))
    try:
        from slowmodel import SlowRegressor
    finally:
        sys.path.remove(str(MODELS))
    model = SlowRegressor(delay=0.0).fit(np.zeros((4, 2)), np.arange(4.0))
    bundle = package(model, np.zeros((4, 2)), name="slow", version="1", out=tmp_path / "slow")
    meta = json.loads((bundle / "metadata.json").read_text())
    meta["untrusted_types"] = []
    (bundle / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"slowmodel\.SlowRegressor"):
        load_bundle(bundle, Settings())


def test_sklearn_minor_version_mismatch_refuses_unless_allowed(tmp_path: Path, iris_bundle: Path) -> None:
    bundle = copy(iris_bundle, tmp_path)
    meta = json.loads((bundle / "metadata.json").read_text())
    meta["versions"]["sklearn"] = "1.4.2"
    (bundle / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(
        BundleError,
        match=r"saved with scikit-learn 1\.4\.2, this server runs .*"
        r"ALLOW_SKLEARN_VERSION_MISMATCH",
    ):
        load_bundle(bundle, Settings())
    assert (
        load_bundle(bundle, Settings(allow_sklearn_version_mismatch=True)).metadata.name == "iris-classifier"
    )


def test_expected_name_and_version(iris_bundle: Path) -> None:
    with pytest.raises(BundleError, match="MODEL_NAME expects 'churn'"):
        load_bundle(iris_bundle, Settings(model_name="churn"))
    with pytest.raises(BundleError, match=r"MODEL_VERSION expects '2\.0\.0'"):
        load_bundle(iris_bundle, Settings(model_version="2.0.0"))
    assert load_bundle(iris_bundle, Settings(model_name="iris-classifier", model_version="1.0.0"))


def test_missing_or_broken_bundles(tmp_path: Path, iris_bundle: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nowhere", Settings())
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"no metadata\.json"):
        load_bundle(tmp_path / "empty", Settings())
    bundle = copy(iris_bundle, tmp_path)
    (bundle / "metadata.json").write_text("{not json")
    with pytest.raises(BundleError, match="cannot be read as JSON"):
        load_bundle(bundle, Settings())
    (bundle / "metadata.json").write_text(json.dumps({"format_version": 1, "name": "x"}))
    with pytest.raises(BundleError, match="not a valid bundle description"):
        load_bundle(bundle, Settings())


# ---- the CLI -------------------------------------------------------------------------------------


def test_archive_is_reproducible_and_fetch_refuses_foreign_entries(tmp_path: Path, iris_bundle: Path) -> None:
    a = archive(iris_bundle, tmp_path / "a.tar.gz")
    b = archive(iris_bundle, tmp_path / "b.tar.gz")
    assert sha(a) == sha(b)
    import io
    import tarfile

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../etc/passwd")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(BundleError, match=r"unexpected entry '\.\./etc/passwd'"):
        fetch(evil.as_uri(), sha(evil), tmp_path / "dest")
    assert not (tmp_path / "dest" / "model.skops").exists()


def test_pandas_frame_with_numeric_columns_is_served_as_dataframe(tmp_path: Path) -> None:
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    model = LogisticRegression().fit(X, (X["a"] > 9).astype(int))
    meta = load_bundle(package(model, X, name="ab", version="1", out=tmp_path / "ab"), Settings()).metadata
    assert meta.input_kind == "dataframe" and meta.classes == (0, 1)


def test_default_trust_list_covers_ordinary_estimators_and_only_real_library_types() -> None:
    import importlib

    from model_server.bundle.trust import DEFAULT_TRUSTED_TYPES
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestRegressor,
    )
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPRegressor

    X = np.random.default_rng(0).normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    fitted = [
        GradientBoostingClassifier(n_estimators=3).fit(X, y),
        HistGradientBoostingRegressor(max_iter=3).fit(X, X[:, 1]),
        RandomForestRegressor(n_estimators=3).fit(X, X[:, 1]),
        KNeighborsClassifier().fit(X, y),
        MLPRegressor(max_iter=5).fit(X, X[:, 1]),
        sales_regressor()[0],
    ]
    for est in fitted:
        needed = set(sio.get_untrusted_types(data=sio.dumps(est)))
        assert needed <= DEFAULT_TRUSTED_TYPES, (type(est).__name__, needed - DEFAULT_TRUSTED_TYPES)
    for name in DEFAULT_TRUSTED_TYPES:
        module, _, attr = name.rpartition(".")
        assert module.split(".")[0] in ("sklearn", "numpy", "scipy"), name
        assert hasattr(importlib.import_module(module), attr), name
