"""Reading a bundle exactly as the server does: ``load_bundle`` checks the expected name and version,
the checksum, the scikit-learn version, the artifact's unpacked size, the trust list and the loaded
model's structure, and is also what ``model-server validate`` runs. Never pickle or joblib: the
artifact is skops, loaded with a trust list that comes from the server's configuration (trust.py),
not from the bundle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sklearn
from sklearn.base import is_classifier, is_regressor

from ..errors import BundleError
from ..settings import Settings
from ..types import Metadata
from . import artifact
from .artifact_limits import check_unpacked_size, effective_unpacked_cap
from .layout import ARTIFACT, FETCH_FAILED, METADATA
from .metadata import plain_label, read_metadata
from .skops_import import import_skops_io
from .structure import StructureError, check_structure
from .trust import UntrustedTypesError, trusted_types


@dataclass(frozen=True)
class LoadedBundle:
    path: Path
    metadata: Metadata
    estimator: Any


def load_bundle(path: str | os.PathLike[str], settings: Settings) -> LoadedBundle:
    """Verify and load a bundle as the server does; raise BundleError saying what to fix."""
    bundle = Path(path)
    failed = bundle / FETCH_FAILED
    if failed.is_file():
        reason = failed.read_text(errors="replace").strip()[:2000]
        raise BundleError(f"the bundle could not be fetched: {reason}")
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
    sio = import_skops_io()
    from skops.io.exceptions import UntrustedTypesFoundException

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
        if [plain_label(c) for c in estimator.classes_] != list(meta.classes):
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
