"""Reference statistics of the training data, written into metadata.json for drift monitoring.

The format is the contract with runtime/drift.py (docs/design/contracts.md, "The drift reference in a
bundle"):
numeric:     {"kind": "numeric", "edges": [e1..ek], "counts": [c0..ck]}  (k <= 9 distinct deciles;
             bin 0 is (-inf, e1], bin i is (e_i, e_{i+1}], bin k is (e_k, +inf))
categorical: {"kind": "categorical", "counts": {"<value>": n, ...}}  (at most 50 values, the rest
             summed under "__other__")
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

MAX_CATEGORIES = 50
OTHER = "__other__"
DECILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _clean_float(x: float) -> float:
    # repr-stable floats: the same data must give byte-identical metadata.json
    return float(np.float64(x))


def numeric_stat(values: np.ndarray) -> dict[str, Any]:
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"kind": "numeric", "edges": [], "counts": [0]}
    edges = np.unique(np.quantile(x, DECILES))
    counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=edges.size + 1)
    return {"kind": "numeric", "edges": [_clean_float(e) for e in edges], "counts": [int(c) for c in counts]}


def categorical_stat(values: Iterable[Any]) -> dict[str, Any]:
    counter = Counter(str(v) for v in values)
    # most common first, ties by value, so the output does not depend on row order
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    counts = dict(ranked[:MAX_CATEGORIES])
    rest = sum(n for _, n in ranked[MAX_CATEGORIES:])
    if rest:
        counts[OTHER] = counts.get(OTHER, 0) + rest
    return {"kind": "categorical", "counts": counts}


def bin_counts(edges: list[float], values: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins that ``edges`` define (same rule as ``numeric_stat``)."""
    e = np.asarray(edges, dtype=np.float64)
    return np.bincount(np.searchsorted(e, values, side="left"), minlength=e.size + 1)
