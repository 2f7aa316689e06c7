"""Keeps what a model does not use out of the serving process: pandas, and scipy.stats until used.

**pandas.** scikit-learn imports pandas whenever it is installed, in one place: ``sklearn.utils.fixes``
runs ``import pandas`` when it is first imported and falls back to ``None`` when that fails. The name
it binds is used nowhere else (scikit-learn 1.9); everywhere else scikit-learn, and narwhals under
it, look pandas up in ``sys.modules`` when they are handed something that might be a DataFrame. So
for a model fitted on arrays pandas is ~30 MiB of resident memory and ~0.2 s of every start for
nothing (docs/performance.md, memory per imported package). ``model-server serve`` therefore imports
``sklearn.utils.fixes`` first, inside ``absent("pandas")``, where ``import pandas`` fails as if it
were not installed. From then on pandas imports as usual: the runtime imports it when it loads a
model that takes a DataFrame (features.py), before that model is ready. (Deferring pandas with
importlib's LazyLoader instead does not work: narwhals takes any ``pandas`` in ``sys.modules`` as
imported and touches it on every predict, which loads it.)

**scipy.stats.** ``sklearn.utils.fixes`` also runs ``import scipy.stats``, and four modules every
forest imports bind a name from it (``rankdata``, ``gmean``, ``spearmanr``, ``chi2``: metrics,
model selection, losses, covariance), all of them used only while fitting or scoring. scipy.stats
with what only it imports was a quarter of the server's import CPU and ~15 MiB (docs/performance.md,
cold start). ``defer_scipy_stats`` puts a stand-in in its place. Asked for one of scipy.stats'
functions or objects (``norm``, ``rankdata``: every attribute that is neither a class nor a module,
listed in scipy_stats_names.py, generated from the real module), it gives a stand-in for that name
that imports the real scipy.stats when first called or looked into; asked for a class or a
submodule, or for a submodule import, it imports the real one at once; asked for a name scipy.stats
does not have, it raises AttributeError as the real one would. Once the real module is imported,
the stand-in module answers with the real attributes. A model whose predict uses scipy.stats (a
QuantileTransformer with a normal output, say) loads it in its warm-up call, before it is ready.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from .scipy_stats_names import SCIPY_VERSION, STATS_NAMES


class _Absent(importlib.abc.MetaPathFinder):
    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{fullname} is kept out of this import", name=fullname)
        return None


@contextmanager
def absent(*names: str) -> Iterator[None]:
    """While the block runs, importing any of ``names`` (not yet imported) fails as if it were not
    installed."""
    finder = _Absent(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def import_scikit_learn_without_pandas() -> None:
    """Import scikit-learn's compatibility module before anything else does, without pandas, with
    scipy.stats deferred."""
    if "sklearn.utils.fixes" in sys.modules:
        return
    defer_scipy_stats()
    with absent("pandas"):
        import sklearn.utils.fixes  # noqa: F401 - imported for its side effect, here and only here


_STATS = "scipy.stats"
_lock = threading.RLock()


def real_scipy_stats() -> ModuleType:
    """The real scipy.stats, imported now if the stand-in is still in its place."""
    with _lock:
        module = sys.modules.get(_STATS)
        if module is not None and not isinstance(module, _StatsStandIn):
            return module
        if module is not None:
            del sys.modules[_STATS]
        try:
            return importlib.import_module(_STATS)
        except BaseException:
            if module is not None and _STATS not in sys.modules:
                sys.modules[_STATS] = module
            raise


class _StatsStandIn(ModuleType):
    """scipy.stats until something uses it (see the module's docstring)."""

    def __getattr__(self, name: str) -> Any:
        real = sys.modules.get(_STATS)
        if real is not None and real is not self:  # imported since: the real thing from now on
            return getattr(real, name)
        kind = STATS_NAMES.get(name)
        if kind == "value":
            return _stand_in(name)
        if kind is None:  # scipy.stats has no module __getattr__: what it lacks, it lacks
            raise AttributeError(f"module 'scipy.stats' has no attribute '{name}'")
        return getattr(real_scipy_stats(), name)  # a class or a submodule: only the real one will do


class _Deferred:
    """A name from scipy.stats (a function, or a distribution such as ``chi2``) that imports the real
    module when it is first called or looked into, then is only a pointer to the real object."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _target(self) -> Any:
        return getattr(real_scipy_stats(), self._name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target(), attr)

    def __repr__(self) -> str:
        return f"<scipy.stats.{self._name}, imported when first used>"


@functools.cache
def _stand_in(name: str) -> _Deferred:
    return _Deferred(name)


class _StatsSubmodules(importlib.abc.MetaPathFinder):
    """Importing a submodule of scipy.stats imports the real package first: its modules import one
    another through the package, which must be the real one by then."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_STATS + ".") or not isinstance(sys.modules.get(_STATS), _StatsStandIn):
            return None
        real_scipy_stats()
        loaded = sys.modules.get(fullname)
        if loaded is not None:  # imported by the real package itself just now: that one, not a copy
            return importlib.util.spec_from_loader(fullname, _Loaded(loaded))
        return None


class _Loaded(importlib.abc.Loader):
    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        pass


def defer_scipy_stats() -> None:
    """Put the stand-in in scipy.stats' place, unless scipy.stats is imported already or the names
    kept in scipy_stats_names.py are not those of the installed scipy."""
    if _STATS in sys.modules:
        return
    import scipy

    if scipy.__version__ != SCIPY_VERSION:
        return
    spec = importlib.util.find_spec(_STATS)  # imports the (light) scipy package, not scipy.stats
    if spec is None or spec.submodule_search_locations is None:
        return
    stand_in = _StatsStandIn(_STATS)
    stand_in.__spec__ = spec
    stand_in.__path__ = list(spec.submodule_search_locations)
    stand_in.__file__ = spec.origin
    stand_in.__package__ = _STATS
    sys.modules[_STATS] = stand_in
    sys.meta_path.insert(0, _StatsSubmodules())


def stats_deferred() -> bool:
    """Whether scipy.stats is still the stand-in (tests, the log line at ready)."""
    return isinstance(sys.modules.get(_STATS), _StatsStandIn)


def generated_source() -> str:
    """scipy_stats_names.py for the installed scipy: each public attribute of scipy.stats and whether
    it is a class, a module or a value (a function or an object). Run it in a fresh interpreter: a
    submodule of scipy.stats that something else imported would be one more attribute."""
    import json

    import scipy
    import scipy.stats

    kinds = {}
    for name in dir(scipy.stats):
        if name.startswith("__"):
            continue
        value = getattr(scipy.stats, name)
        kinds[name] = (
            "module" if isinstance(value, ModuleType) else "class" if isinstance(value, type) else "value"
        )
    lines = [
        '"""Generated by ``python -m model_server.imports``: the attributes of scipy.stats and their',
        'kind, for the stand-in in imports.py. Do not edit."""',
        "",
        f"SCIPY_VERSION = {json.dumps(scipy.__version__)}",
        "STATS_NAMES: dict[str, str] = {",
        *(f"    {json.dumps(name)}: {json.dumps(kind)}," for name, kind in sorted(kinds.items())),
        "}",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """Write scipy_stats_names.py from this environment's scipy (``--check``: only compare)."""
    from pathlib import Path

    target = Path(__file__).with_name("scipy_stats_names.py")
    wanted = generated_source()
    if target.exists() and target.read_text() == wanted:
        return 0
    if "--check" in argv:
        print(f"{target} does not match the installed scipy: regenerate it", file=sys.stderr)
        return 1
    target.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
