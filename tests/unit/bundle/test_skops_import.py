"""skops imported with the kept estimator names trusts exactly what it trusts after its own walk over
scikit-learn, and the kept names are those of this scikit-learn (bundle/skops_import.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from model_server.bundle import skops_import

_PRINT_TRUST = """
import json, sys
{setup}
from skops.io import _trusted_types as t
print(json.dumps({{"names": t.SKLEARN_ESTIMATOR_TYPE_NAMES,
                   "sklearn_modules": sum(m.startswith("sklearn.") for m in sys.modules)}}))
"""


def _trust_list(setup: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _PRINT_TRUST.format(setup=setup)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def test_the_kept_names_are_current_for_this_scikit_learn() -> None:
    assert skops_import.main(["--check"]) == 0, "run: python -m model_server.bundle.skops_import"


def test_skops_trusts_the_same_types_without_walking_scikit_learn() -> None:
    walked = _trust_list("import skops.io")
    kept = _trust_list("from model_server.bundle.skops_import import import_skops_io; import_skops_io()")
    assert kept["names"] == walked["names"]
    assert len(kept["names"]) > 150  # type: ignore[arg-type]  # every estimator, not an empty list
    # The point of it: a third of scikit-learn's modules (306 of 439 with 1.9) stays unimported.
    assert kept["sklearn_modules"] <= walked["sklearn_modules"] - 100, (kept, walked)  # type: ignore[operator]
