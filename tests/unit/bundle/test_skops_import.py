"""skops imported with the kept estimator names and the one-pass ufunc naming trusts exactly what it
trusts after its own walk over scikit-learn, and the kept names are those of this scikit-learn
(bundle/skops_import.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from model_server.bundle import skops_import

_PRINT_TRUST = """
import json, sys
{setup}
from skops.io import _trusted_types as t
from skops.io import _utils
print(json.dumps({{"names": t.SKLEARN_ESTIMATOR_TYPE_NAMES,
                   "ufuncs": t.SCIPY_UFUNC_TYPE_NAMES + t.NUMPY_UFUNC_TYPE_NAMES,
                   "skops_own_function": _utils.get_public_type_names.__module__ == "skops.io._utils",
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
    assert kept["ufuncs"] == walked["ufuncs"]
    assert len(kept["ufuncs"]) > 200  # type: ignore[arg-type]  # scipy.special's and numpy's
    assert kept["skops_own_function"] is True  # put back once skops.io is imported
    assert len(kept["names"]) > 150  # type: ignore[arg-type]  # every estimator, not an empty list
    # The point of it: a third of scikit-learn's modules (306 of 439 with 1.9) stays unimported.
    assert kept["sklearn_modules"] <= walked["sklearn_modules"] - 100, (kept, walked)  # type: ignore[operator]


def test_one_pass_ufunc_naming_answers_as_skops_does_in_this_process() -> None:
    import numpy as np
    import scipy.special
    from skops.io import _utils

    for module in (scipy.special, np):
        ours = skops_import.public_type_names(module, np.ufunc)
        assert ours == _utils.get_public_type_names(module, np.ufunc)
        assert ours and all(name.startswith(module.__name__.split(".")[0] + ".") for name in ours)


def test_an_object_no_module_holds_is_named_from_main_as_skops_names_it() -> None:
    import numpy as np
    from skops.io import _utils

    # A ufunc made at run time belongs to no module: skops names it __main__.<name>.
    made = np.frompyfunc(lambda x: x, 1, 1)
    homes = skops_import._first_modules_holding([made, np.add])
    assert homes == {id(made): "__main__", id(np.add): _utils.whichmodule(np.add, np.add.__name__)}
