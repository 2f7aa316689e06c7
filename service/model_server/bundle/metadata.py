"""metadata.json: a bundle's description, its JSON form and what is derived from it alone.

Light on purpose: no scikit-learn, skops or pandas, so the HTTP layer (the /docs example), the
runtime's warm-up and ``model-server validate`` read a bundle's description without the loader.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BundleError
from ..types import Feature, Metadata
from .layout import ARTIFACT, METADATA

FORMAT_VERSION = 1
# Names end up in URLs and Kubernetes label values: keep them to DNS-label characters.
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
VERSION_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def to_json(meta: Metadata) -> dict[str, Any]:
    """The metadata.json document of ``meta``."""
    return {
        "format_version": FORMAT_VERSION,
        "name": meta.name,
        "version": meta.version,
        "task": meta.task,
        "estimator": meta.estimator,
        "input_kind": meta.input_kind,
        "allow_nan": meta.allow_nan,
        "features": [
            {"name": f.name, "dtype": f.dtype}
            | ({"categories": list(f.categories)} if f.categories is not None else {})
            for f in meta.features
        ],
        "classes": list(meta.classes) if meta.classes is not None else None,
        "has_predict_proba": meta.has_predict_proba,
        "versions": meta.versions,
        "artifact": {"file": ARTIFACT, "sha256": meta.sha256},
        "untrusted_types": list(meta.untrusted_types),
        "reference": meta.reference,
    }


def from_json(d: Any) -> Metadata:
    """A Metadata from a parsed metadata.json; BundleError naming what is wrong."""
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
        return Metadata(
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
    return from_json(raw)


def plain_label(value: Any) -> Any:
    """A class label as a JSON value (numpy scalars are not)."""
    return value.item() if isinstance(value, np.generic) else value


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
