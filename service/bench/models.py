"""The benchmark's models, built reproducibly into .bench/models/<key>/ (fixed seeds, no download).

Each model directory holds what every contender needs to serve the SAME fitted estimator:
- bundle/            our model bundle (the demo bundle for the forest, ``bundle.package`` for the rest)
- mlserver/          model.joblib + model-settings.json for the MLServer peer (its sklearn runtime only
                     reads joblib/pickle: written here for the peer's own venv, never loaded by our server)
- estimator.skops    for the tutorial baseline and the in-process floor
- bodies/            request bodies: V2 (2-D FP64 tensor, the form both V2 servers accept) and named JSON,
                     1 row and 32 rows
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Bump when a model or body changes, so stale .bench/models are rebuilt.
FORMAT = 3
BATCH_ROWS = 32


@dataclass(frozen=True)
class BenchModel:
    key: str  # the model name every server serves it under
    title: str
    features: list[str]
    directory: Path

    @property
    def bundle(self) -> Path:
        return self.directory / "bundle"

    def body(self, form: str, rows: int) -> Path:
        return self.directory / "bodies" / f"{form}-{rows}.json"


def _forest(demo_bundle: Path) -> tuple[Any, pd.DataFrame]:
    from sklearn.datasets import load_iris

    meta = json.loads((demo_bundle / "metadata.json").read_text())
    names = [f["name"] for f in meta["features"]]
    data = load_iris()
    X = pd.DataFrame(data.data, columns=names)
    return load_estimator(demo_bundle / "model.skops"), X


def _linear() -> tuple[Any, pd.DataFrame]:
    from sklearn.datasets import make_regression
    from sklearn.linear_model import LinearRegression

    X, y = make_regression(n_samples=2000, n_features=10, noise=5.0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(10)])
    return LinearRegression().fit(frame, y), frame


def _boosting() -> tuple[Any, pd.DataFrame]:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(20)])
    model = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0)
    return model.fit(frame, y), frame


MODELS = {
    "iris-classifier": "random forest, 100 trees, 4 features (the demo bundle)",
    "linear": "LinearRegression, 10 features",
    "boosting": "GradientBoostingClassifier, 100 trees, 20 features",
}


def load_estimator(path: Path) -> Any:
    """Load a .skops file that this benchmark (or `make demo`) wrote itself.

    Trusting the file's own type list is acceptable only here, for files built in this run by our
    own code; the server never does this (its trust list comes from its configuration).
    """
    import skops.io as sio

    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


def build(root: Path, demo_bundle: Path, keys: list[str]) -> list[BenchModel]:
    out = []
    for key in keys:
        directory = root / key
        stamp = directory / f".built-{FORMAT}"
        if not stamp.exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            _build_one(key, directory, demo_bundle)
            stamp.touch()
        meta = json.loads((directory / "bundle" / "metadata.json").read_text())
        out.append(BenchModel(key, MODELS[key], [f["name"] for f in meta["features"]], directory))
    return out


def _build_one(key: str, directory: Path, demo_bundle: Path) -> None:
    import joblib
    import skops.io as sio

    if key == "iris-classifier":
        estimator, X = _forest(demo_bundle)
        shutil.copytree(demo_bundle, directory / "bundle")
    else:
        estimator, X = _linear() if key == "linear" else _boosting()
        from model_server.bundle.package import package

        package(estimator, X, name=key, version="1.0.0", out=directory / "bundle")
    sio.dump(estimator, directory / "estimator.skops")

    # MLServer gets a copy that predicts on plain arrays (what its NumpyRequestCodec decodes V2
    # tensors to) without sklearn's "fitted with feature names" warning on every call.
    peer = copy.deepcopy(estimator)
    if hasattr(peer, "feature_names_in_"):
        del peer.feature_names_in_
    (directory / "mlserver").mkdir()
    joblib.dump(peer, directory / "mlserver" / "model.joblib")

    bodies = directory / "bodies"
    bodies.mkdir()
    rng = np.random.default_rng(0)
    sample = X.iloc[rng.choice(len(X), size=BATCH_ROWS, replace=False)].reset_index(drop=True)
    for rows in (1, BATCH_ROWS):
        part = sample.iloc[:rows]
        values = part.to_numpy(dtype=float)
        v2 = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(values.shape),
                    "datatype": "FP64",
                    "data": values.ravel().tolist(),
                }
            ]
        }
        (bodies / f"v2-{rows}.json").write_text(json.dumps(v2))
        records = part.to_dict(orient="records")
        named: Any = records[0] if rows == 1 else {"instances": records}
        (bodies / f"named-{rows}.json").write_text(json.dumps(named))
        (bodies / f"list-{rows}.json").write_text(json.dumps(records))
