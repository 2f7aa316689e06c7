"""skops, imported without importing every module of scikit-learn first.

When ``skops.io`` is imported it builds its default list of trusted scikit-learn types by calling
``sklearn.utils.all_estimators()``, which imports every scikit-learn module and inspects every class
in it: for the demo forest that walk was 0.4 s of the start and 35 MiB of resident memory for modules
the model never uses (and it imports pandas and all of scipy.stats on the way). skops keeps only the
names (``module.Class``) of what it finds.

So the names are kept here, in ``sklearn_estimators.py``, generated from the real walk with the
scikit-learn of the lock (``python -m model_server.bundle.skops_import``; a test checks that the file
matches what skops itself computes). ``import_skops_io`` hands skops those names instead of the walk,
so its trust list is the same list, name for name. With any other scikit-learn version the file does
not apply and skops walks scikit-learn as it always does: slower, never less safe.

Its list of trusted ufuncs costs the same again: skops names each of scipy.special's ~800 ufuncs by
searching every loaded module (~1,650) in import order for the first one that holds it, one
``getattr`` at a time, 0.11 s of a 1 s start. ``public_type_names`` finds the same first module for
all of them in one pass, comparing each module's namespace with the names still looked for; the
result is the same list, name for name (tested against skops' own function).
"""

from __future__ import annotations

import importlib
import importlib.abc
import json
import sys
import warnings
from functools import partial
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

GENERATED = Path(__file__).with_name("sklearn_estimators.py")


def public_type_names(module: ModuleType, oftype: type) -> list[str]:
    """``skops.io._utils.get_public_type_names``, the same answer in one pass over ``sys.modules``."""
    prefix = module.__name__.rpartition(".")[0]
    found = [obj for attr in dir(module) if issubclass((obj := getattr(module, attr)).__class__, oftype)]
    homes = _first_modules_holding(found)
    return sorted({n for obj in found if (n := f"{homes[id(obj)]}.{obj.__name__}").startswith(prefix)})


def _first_modules_holding(objects: list[Any]) -> dict[int, str]:
    """For each object, what skops' ``whichmodule(obj, obj.__name__)`` answers: its ``__module__``, else
    the first module in ``sys.modules`` whose attribute of that name is the object, else ``__main__``."""
    homes: dict[int, str] = {}
    wanted: dict[str, list[Any]] = {}
    for obj in objects:
        if (home := getattr(obj, "__module__", None)) is not None:
            homes[id(obj)] = home
        else:
            wanted.setdefault(obj.__name__, []).append(obj)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # as skops: numpy.core's deprecation
        for name, mod in sys.modules.copy().items():
            if not wanted:
                break
            if name in ("__main__", "__mp_main__") or mod is None:
                continue
            if type(mod) is ModuleType and "__getattr__" not in vars(mod):
                # A plain module's attribute is its namespace entry (no ufunc is named like a module
                # type's own attribute): only the names it holds need looking at.
                namespace = vars(mod)
                candidates = [n for n in wanted.keys() & namespace.keys() if not n.startswith("__")]
                lookup = namespace.get
            else:  # a module computing attributes (__getattr__, a lazy module): asked name by name
                candidates = list(wanted)
                lookup = partial(_getattr_or_none, mod)
            for attr in candidates:
                value = lookup(attr)
                homes.update((id(obj), name) for obj in wanted[attr] if obj is value)
                if rest := [obj for obj in wanted[attr] if obj is not value]:
                    wanted[attr] = rest
                else:
                    del wanted[attr]
    for left in wanted.values():
        homes.update((id(obj), "__main__") for obj in left)
    return homes


def _getattr_or_none(mod: Any, attr: str) -> Any:
    try:
        return getattr(mod, attr, None)
    except (AttributeError, ImportError):
        return None


class _FasterTypeNames(importlib.abc.MetaPathFinder):
    """Hands skops ``public_type_names`` for the one import that builds its trust list, then steps aside.
    It finds nothing itself: the module is imported as usual, only after the swap."""

    def __init__(self) -> None:
        self.swapped: tuple[ModuleType, Any] | None = None

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "skops.io._trusted_types" and self.swapped is None:
            utils = importlib.import_module("skops.io._utils")
            self.swapped = (utils, utils.get_public_type_names)
            utils.get_public_type_names = public_type_names  # type: ignore[attr-defined]
        return None

    def restore(self) -> None:
        if self.swapped is not None:
            utils, original = self.swapped
            utils.get_public_type_names = original  # type: ignore[attr-defined]


def _named(module: str, name: str) -> SimpleNamespace:
    # All that skops reads of an estimator class to name it: __module__ and __name__.
    return SimpleNamespace(__module__=module, __name__=name)


def import_skops_io() -> ModuleType:
    """``skops.io``, imported with the kept estimator names when they are for this scikit-learn."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    import sklearn
    import sklearn.utils

    from .sklearn_estimators import ESTIMATORS, SKLEARN_VERSION

    if sklearn.__version__ != SKLEARN_VERSION:
        import skops.io

        return sys.modules["skops.io"]
    walk = sklearn.utils.all_estimators
    sklearn.utils.all_estimators = lambda type_filter=None: [(n, _named(m, n)) for m, n in ESTIMATORS]
    finder = _FasterTypeNames()
    sys.meta_path.insert(0, finder)
    try:
        import skops.io  # noqa: F401 - for sys.modules
    finally:
        sys.meta_path.remove(finder)
        finder.restore()
        sklearn.utils.all_estimators = walk
    return sys.modules["skops.io"]


def walked_estimators() -> list[tuple[str, str]]:
    """(module, class name) of every scikit-learn estimator, from the real walk (slow: generator and
    tests only)."""
    from sklearn.utils import all_estimators

    return [(cls.__module__, cls.__name__) for _, cls in all_estimators()]  # in the walk's own order


def generated_source(estimators: list[tuple[str, str]], sklearn_version: str) -> str:
    lines = [
        '"""Generated by ``python -m model_server.bundle.skops_import``: the scikit-learn estimators',
        "that ``sklearn.utils.all_estimators()`` finds, for skops_import.py. Do not edit.",
        '"""',
        "",
        f"SKLEARN_VERSION = {json.dumps(sklearn_version)}",
        "ESTIMATORS: tuple[tuple[str, str], ...] = (",
        *(f"    ({json.dumps(module)}, {json.dumps(name)})," for module, name in estimators),
        ")",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Write sklearn_estimators.py from this environment's scikit-learn (``--check``: only compare)."""
    import sklearn

    wanted = generated_source(walked_estimators(), sklearn.__version__)
    current = GENERATED.read_text() if GENERATED.exists() else ""
    if current == wanted:
        return 0
    if "--check" in argv:
        print(
            f"{GENERATED} does not match scikit-learn {sklearn.__version__}: regenerate it", file=sys.stderr
        )
        return 1
    GENERATED.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
