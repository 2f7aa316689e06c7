"""The physical floor: in-process predict time per call, no HTTP, no JSON (run pinned to the server's core).

Prints one JSON object: seconds per predict call for 1 row and for 32 rows, for the fastest input form
the estimator accepts (a NumPy array) and for the form it was fitted on (a DataFrame with the feature
names). The floor reported by run.py is the fastest of these.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from models import load_estimator


def per_call(fn, budget: float = 1.0) -> float:  # type: ignore[no-untyped-def]
    """Median seconds per call over repeated timed groups, after a warm-up."""
    for _ in range(20):
        fn()
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < budget / 10:
        fn()
        n += 1
    group = max(n, 1)
    samples = []
    for _ in range(10):
        t = time.perf_counter()
        for _ in range(group):
            fn()
        samples.append((time.perf_counter() - t) / group)
    return statistics.median(samples)


def main() -> None:
    model_dir = Path(sys.argv[1])
    estimator = load_estimator(model_dir / "estimator.skops")
    meta = json.loads((model_dir / "bundle" / "metadata.json").read_text())
    names = [f["name"] for f in meta["features"]]
    batch = json.loads((model_dir / "bodies" / "list-32.json").read_text())
    frame = pd.DataFrame(batch, columns=names)
    array = frame.to_numpy(dtype=float)
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    out = {}
    for rows in (1, 32):
        a = np.ascontiguousarray(array[:rows])
        f = frame.iloc[:rows]
        out[f"array_{rows}"] = per_call(lambda a=a: estimator.predict(a))
        out[f"frame_{rows}"] = per_call(lambda f=f: estimator.predict(f))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
