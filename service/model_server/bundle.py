"""Model bundles: a directory with ``model.skops`` and ``metadata.json``.

``package`` writes one from a fitted estimator and a sample of its training data; ``load_bundle``
reads one exactly as the server does (checksum, versions, trust list, expected name/version) and is
also what ``model-server validate`` runs. Never pickle or joblib: the artifact is skops, loaded with a
trust list that comes from the server's configuration (trust.py), not from the bundle.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
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
from skops.io.exceptions import UntrustedTypesFoundException

from . import __version__, artifact
from .artifact_limits import check_unpacked_size, effective_unpacked_cap
from .errors import BundleError
from .features import Dtype, Feature, InputKind, InputSchema, Rows
from .layout import ARTIFACT, METADATA
from .reference import categorical_stat, numeric_stat
from .settings import Settings
from .structure import StructureError, check_structure
from .trust import UntrustedTypesError, trusted_types

FORMAT_VERSION = 1
# Names end up in URLs and Kubernetes label values: keep them to DNS-label characters.
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
VERSION_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
# Categories listed in metadata per string feature; beyond this the list is left out (drift statistics
# still keep the top 50) so that a high-cardinality feature cannot blow up metadata.json.
MAX_LISTED_CATEGORIES = 1000


@dataclass(frozen=True)
class Metadata:
    name: str
    version: str
    task: str  # "classifier" | "regressor"
    features: tuple[Feature, ...]
    input_kind: InputKind
    allow_nan: bool
    classes: tuple[Any, ...] | None
    has_predict_proba: bool
    estimator: str
    versions: dict[str, str]
    sha256: str
    untrusted_types: tuple[str, ...]
    reference: dict[str, Any]

    def input_schema(self, max_rows: int) -> InputSchema:
        return InputSchema(self.features, self.input_kind, self.allow_nan, max_rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "estimator": self.estimator,
            "input_kind": self.input_kind,
            "allow_nan": self.allow_nan,
            "features": [
                {"name": f.name, "dtype": f.dtype}
                | ({"categories": list(f.categories)} if f.categories is not None else {})
                for f in self.features
            ],
            "classes": list(self.classes) if self.classes is not None else None,
            "has_predict_proba": self.has_predict_proba,
            "versions": self.versions,
            "artifact": {"file": ARTIFACT, "sha256": self.sha256},
            "untrusted_types": list(self.untrusted_types),
            "reference": self.reference,
        }

    @classmethod
    def from_json(cls, d: Any) -> Metadata:
        try:
            if d["format_version"] != FORMAT_VERSION:
                raise BundleError(
                    f"{METADATA} has format_version {d['format_version']}, this server reads "
                    f"{FORMAT_VERSION}: re-package the model with this server's `model-server package`"
                )
            features = tuple(
                Feature(f["name"], f["dtype"], tuple(f["categories"]) if "categories" in f else None)
                for f in d["features"]
            )
            if not features or any(f.dtype not in ("float", "int", "string") for f in features):
                raise ValueError("features must be a non-empty list with dtype float, int or string")
            if d["task"] not in ("classifier", "regressor") or d["input_kind"] not in ("array", "dataframe"):
                raise ValueError("task must be classifier|regressor and input_kind array|dataframe")
            return cls(
                name=str(d["name"]),
                version=str(d["version"]),
                task=d["task"],
                features=features,
                input_kind=d["input_kind"],
                allow_nan=bool(d["allow_nan"]),
                classes=tuple(d["classes"]) if d["classes"] is not None else None,
                has_predict_proba=bool(d["has_predict_proba"]),
                estimator=str(d["estimator"]),
                versions={str(k): str(v) for k, v in d["versions"].items()},
                sha256=str(d["artifact"]["sha256"]),
                untrusted_types=tuple(d["untrusted_types"]),
                reference=dict(d["reference"]),
            )
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BundleError(
                f"{METADATA} is not a valid bundle description ({type(e).__name__}: {e}): "
                "re-package the model with `model-server package`"
            ) from None


@dataclass(frozen=True)
class LoadedBundle:
    path: Path
    metadata: Metadata
    estimator: Any


# ---- packaging ---------------------------------------------------------------------------------


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
        classes = tuple(_plain(c) for c in getattr(estimator, "classes_", np.unique(predictions)))
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
    _write_atomic(path / METADATA, (json.dumps(metadata.to_json(), indent=2) + "\n").encode())
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


def _plain(value: Any) -> Any:
    """A class label as a JSON value (numpy scalars are not)."""
    return value.item() if isinstance(value, np.generic) else value


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


# ---- loading -----------------------------------------------------------------------------------


def read_metadata(path: Path) -> Metadata:
    meta_file = path / METADATA
    try:
        raw = json.loads(meta_file.read_bytes())
    except FileNotFoundError:
        raise BundleError(
            f"no {METADATA} in {path}: MODEL_BUNDLE must be a directory made by `model-server package`"
        ) from None
    except (OSError, ValueError) as e:
        raise BundleError(f"{meta_file} cannot be read as JSON: {e}") from None
    return Metadata.from_json(raw)


def load_bundle(path: str | os.PathLike[str], settings: Settings) -> LoadedBundle:
    """Verify and load a bundle as the server does; raise BundleError saying what to fix."""
    bundle = Path(path)
    if not bundle.is_dir():
        raise BundleError(
            f"bundle directory {bundle} does not exist: set MODEL_BUNDLE (or the serve argument) to a "
            "directory made by `model-server package`"
        )
    meta = read_metadata(bundle)
    if settings.model_name is not None and meta.name != settings.model_name:
        raise BundleError(
            f"the bundle is model {meta.name!r} but MODEL_NAME expects {settings.model_name!r}: "
            "deploy the right bundle or fix MODEL_NAME"
        )
    if settings.model_version is not None and meta.version != settings.model_version:
        raise BundleError(
            f"the bundle is {meta.name} version {meta.version!r} but MODEL_VERSION expects "
            f"{settings.model_version!r}: deploy the right bundle or fix MODEL_VERSION"
        )
    try:
        data = (bundle / ARTIFACT).read_bytes()
    except OSError as e:
        raise BundleError(f"cannot read {bundle / ARTIFACT}: {e}") from None
    digest = artifact.sha256(data)
    if digest != meta.sha256:
        raise BundleError(
            f"checksum mismatch: {ARTIFACT} has sha256 {digest} but {METADATA} says {meta.sha256}; the "
            "artifact was changed or truncated: re-package or re-download the bundle"
        )
    check_sklearn_version(meta.versions.get("sklearn", "unknown"), settings.allow_sklearn_version_mismatch)
    cap, cap_name = effective_unpacked_cap(settings.max_artifact_unpacked_bytes)
    check_unpacked_size(data, cap, cap_name)  # before skops inflates anything
    allowed = sorted(trusted_types(settings.trusted_types))
    try:
        # One parse of the file: skops refuses, before constructing anything, every type outside its
        # own defaults and `allowed`. (Asking get_untrusted_types first parsed it twice: 0.12 s of
        # the demo's 1.8 s start.) The refused types are worked out only on that error path.
        estimator = sio.loads(data, trusted=allowed)
    except UntrustedTypesFoundException:
        refused = sorted(set(sio.get_untrusted_types(data=data)) - set(allowed))
        raise BundleError(f"refusing to load {ARTIFACT}: {UntrustedTypesError(refused)}") from None
    except Exception as e:  # noqa: BLE001 - skops raises many types for a damaged or foreign artifact
        raise BundleError(
            f"{ARTIFACT} is not a readable skops file or could not be loaded: {type(e).__name__}: {e}"
        ) from None
    try:  # before anything predicts: a crafted tree index crashes the process on the first call
        check_structure(estimator)
    except StructureError as e:
        raise BundleError(f"{ARTIFACT} failed the structure check: {e}") from None
    _check_matches(meta, estimator)
    return LoadedBundle(bundle, meta, estimator)


def sklearn_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def check_sklearn_version(saved: str, allow_mismatch: bool) -> None:
    if sklearn_minor(saved) != sklearn_minor(sklearn.__version__) and not allow_mismatch:
        raise BundleError(
            f"the bundle was saved with scikit-learn {saved}, this server runs {sklearn.__version__}: "
            "a different minor version can change predictions. Re-package the model with "
            f"scikit-learn {sklearn_minor(sklearn.__version__)}, or set ALLOW_SKLEARN_VERSION_MISMATCH=true "
            "after checking its predictions"
        )


def _check_matches(meta: Metadata, estimator: Any) -> None:
    actual_task = (
        "classifier" if is_classifier(estimator) else "regressor" if is_regressor(estimator) else None
    )
    if actual_task != meta.task:
        raise BundleError(
            f"{METADATA} says task {meta.task} but the artifact is a {type(estimator).__name__}"
        )
    n_in = getattr(estimator, "n_features_in_", len(meta.features))
    if n_in != len(meta.features):
        raise BundleError(f"{METADATA} lists {len(meta.features)} features, the model takes {n_in}")
    _check_features(meta, estimator)
    if meta.classes is not None and hasattr(estimator, "classes_"):
        if [_plain(c) for c in estimator.classes_] != list(meta.classes):
            raise BundleError(f"{METADATA} classes differ from the model's classes_")


def _check_features(meta: Metadata, estimator: Any) -> None:
    """metadata.json is not covered by the artifact's checksum: hold its features to what package()
    derives from the model, so an edited file cannot make the server feed the model wrong columns."""
    names = [f.name for f in meta.features]
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None and [str(n) for n in fitted] != names:
        raise BundleError(
            f"{METADATA} lists features {names} but the model was fitted on {[str(n) for n in fitted]} "
            "(names and order must match): re-package the model"
        )
    if (fitted is not None) != (meta.input_kind == "dataframe"):
        raise BundleError(
            f"{METADATA} says input_kind {meta.input_kind} but the model was fitted on "
            f"{'a DataFrame' if fitted is not None else 'an array'}: re-package the model"
        )
    stats = meta.reference.get("features", {})
    for f in meta.features:
        if meta.input_kind == "array" and f.dtype == "string":
            raise BundleError(
                f"{METADATA} says feature {f.name!r} is a string, but the model was fitted on a numeric array"
            )
        stat = stats.get(f.name) if isinstance(stats, dict) else None
        kind = stat.get("kind") if isinstance(stat, dict) else None
        expected = "categorical" if f.dtype == "string" else "numeric"
        if kind is not None and kind != expected:
            raise BundleError(
                f"{METADATA} says feature {f.name!r} is {f.dtype} but its training data was {kind}: "
                "re-package the model"
            )


def sample_record(meta: Metadata) -> dict[str, Any]:
    """A typical row built from the reference statistics: used for the warm-up prediction."""
    record: dict[str, Any] = {}
    for f in meta.features:
        stat = meta.reference.get("features", {}).get(f.name, {})
        if f.dtype == "string":
            counts = [k for k in stat.get("counts", {}) if k != "__other__"]
            record[f.name] = counts[0] if counts else (f.categories[0] if f.categories else "")
        else:
            edges = stat.get("edges") or [0.0]
            value = float(edges[len(edges) // 2])
            record[f.name] = round(value) if f.dtype == "int" else value
    return record
