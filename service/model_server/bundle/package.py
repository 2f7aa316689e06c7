"""Writing a bundle: ``package`` turns a fitted estimator and a sample of its training data into a
bundle directory (the reproducible artifact, then metadata.json with the drift reference).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import skops
import skops.io as sio
from sklearn.base import is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from .. import __version__
from ..errors import BundleError
from ..features import Rows
from ..types import Dtype, Feature, InputKind, Metadata
from . import artifact
from .layout import ARTIFACT, METADATA
from .metadata import NAME_RE, VERSION_RE, plain_label, to_json
from .reference import categorical_stat, numeric_stat

# Categories listed in metadata per string feature; beyond this the list is left out (drift statistics
# still keep the top 50) so that a high-cardinality feature cannot blow up metadata.json.
MAX_LISTED_CATEGORIES = 1000


def package(
    estimator: Any,
    X_reference: Any,
    *,
    name: str,
    version: str,
    out: str | os.PathLike[str],
    feature_names: list[str] | None = None,
) -> Path:
    """Write a bundle for a fitted ``estimator`` into the directory ``out`` and return its path.

    ``X_reference`` is a sample of the training data (DataFrame or 2-D array): it fixes the feature
    names and dtypes, and its statistics (and those of the model's predictions on it) become the
    drift reference. ``feature_names`` names the columns of an array (default: the estimator's
    ``feature_names_in_``, else x0, x1, ...).
    """
    if not NAME_RE.match(name):
        raise BundleError(f"model name {name!r} must be lower-case letters, digits and '-' (max 63)")
    if not VERSION_RE.match(version):
        raise BundleError(f"model version {version!r} must be letters, digits, '.', '_' or '-' (max 63)")
    try:
        check_is_fitted(estimator)
    except (NotFittedError, TypeError) as e:
        raise BundleError(f"the estimator is not fitted: {e}") from None
    if is_classifier(estimator):
        task = "classifier"
    elif is_regressor(estimator):
        task = "regressor"
    else:
        raise BundleError(f"{type(estimator).__name__} is neither a classifier nor a regressor")

    frame, input_kind = _reference_frame(estimator, X_reference, feature_names)
    features = tuple(_feature(frame[c], input_kind) for c in frame.columns)
    model_input: Rows = frame if input_kind == "dataframe" else frame.to_numpy(dtype=np.float64)
    try:
        predictions = np.asarray(estimator.predict(model_input))
    except Exception as e:  # the user's model: any failure means the bundle would not serve
        raise BundleError(f"the estimator cannot predict on the reference data: {e}") from e

    classes = None
    if task == "classifier":
        classes = tuple(plain_label(c) for c in getattr(estimator, "classes_", np.unique(predictions)))
    reference = {
        "features": {
            str(c): (categorical_stat(frame[c].dropna()) if f.dtype == "string" else numeric_stat(frame[c]))
            for c, f in zip(frame.columns, features, strict=True)
        },
        "prediction": (categorical_stat(predictions) if task == "classifier" else numeric_stat(predictions)),
        "rows": len(frame),
    }
    data = artifact.dumps(estimator)
    metadata = Metadata(
        name=name,
        version=version,
        task=task,
        features=features,
        input_kind=input_kind,
        allow_nan=bool(get_tags(estimator).input_tags.allow_nan),
        classes=classes,
        has_predict_proba=task == "classifier" and hasattr(estimator, "predict_proba"),
        estimator=_estimator_name(estimator),
        versions={
            "sklearn": sklearn.__version__,
            "skops": skops.__version__,
            "numpy": np.__version__,
            "model_server": __version__,
        },
        sha256=artifact.sha256(data),
        untrusted_types=tuple(sio.get_untrusted_types(data=data)),
        reference=reference,
    )
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    # The artifact first and metadata last: a half-written bundle fails its checksum instead of loading.
    _write_atomic(path / ARTIFACT, data)
    _write_atomic(path / METADATA, (json.dumps(to_json(metadata), indent=2) + "\n").encode())
    return path


def _reference_frame(
    estimator: Any, X: Any, feature_names: list[str] | None
) -> tuple[pd.DataFrame, InputKind]:
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if isinstance(X, pd.DataFrame):
        frame = X.reset_index(drop=True)
        if feature_names is not None and list(feature_names) != [str(c) for c in frame.columns]:
            raise BundleError("feature_names disagrees with the DataFrame's columns; pass one or the other")
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise BundleError(f"the reference data must be 2-D (rows x features), got shape {arr.shape}")
        names = feature_names or (
            [str(n) for n in fitted_names]
            if fitted_names is not None
            else [f"x{i}" for i in range(arr.shape[1])]
        )
        if len(names) != arr.shape[1]:
            raise BundleError(f"{len(names)} feature names for {arr.shape[1]} columns")
        frame = pd.DataFrame(arr, columns=names)
    if len(frame) == 0:
        raise BundleError("the reference data has no rows")
    frame.columns = [str(c) for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        raise BundleError("feature names must be unique")
    n_in = getattr(estimator, "n_features_in_", frame.shape[1])
    if n_in != frame.shape[1]:
        raise BundleError(
            f"the estimator was fitted on {n_in} features, the reference data has {frame.shape[1]}"
        )
    if fitted_names is not None:
        if [str(n) for n in fitted_names] != list(frame.columns):
            raise BundleError(
                "the reference data's columns differ from the columns the estimator was fitted on: "
                f"{list(frame.columns)} vs {list(fitted_names)}"
            )
        return frame, "dataframe"
    for c in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[c]):
            raise BundleError(
                f"feature {c!r} is not numeric but the estimator was fitted on an array: fit it on a "
                "DataFrame (e.g. with a ColumnTransformer) so the server knows which columns are strings"
            )
    return frame, "array"


def _feature(column: pd.Series, input_kind: InputKind) -> Feature:
    name = str(column.name)
    dtype: Dtype
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_integer_dtype(column):
        dtype = "int" if input_kind == "dataframe" else "float"
    elif pd.api.types.is_numeric_dtype(column):
        dtype = "float"
    else:
        values = column.dropna()
        if not all(isinstance(v, str) for v in values):
            raise BundleError(f"feature {name!r} mixes strings and other values: make it one type")
        distinct = sorted(set(values))
        cats = tuple(distinct) if len(distinct) <= MAX_LISTED_CATEGORIES else None
        return Feature(name, "string", cats)
    return Feature(name, dtype)


def _estimator_name(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if steps:
        return "Pipeline(" + ", ".join(type(s).__name__ for _, s in steps) + ")"
    return type(estimator).__name__


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
