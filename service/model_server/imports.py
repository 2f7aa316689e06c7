"""Keeps pandas out of a server whose model never sees a DataFrame.

scikit-learn imports pandas whenever it is installed, in one place: ``sklearn.utils.fixes`` runs
``import pandas`` when it is first imported and falls back to ``None`` when that fails. The name it
binds is used nowhere else (scikit-learn 1.9); everywhere else scikit-learn, and narwhals under it,
look pandas up in ``sys.modules`` when they are handed something that might be a DataFrame. So for
a model fitted on arrays pandas is ~30 MiB of resident memory and ~0.2 s of every start for nothing
(docs/performance.md, memory per imported package).

``model-server serve`` therefore imports ``sklearn.utils.fixes`` first, inside ``absent("pandas")``,
where ``import pandas`` fails as if it were not installed. From then on pandas imports as usual:
the runtime imports it when it loads a model that takes a DataFrame (features.py), before that
model is ready. (Deferring pandas with importlib's LazyLoader instead does not work: narwhals takes
any ``pandas`` in ``sys.modules`` as imported and touches it on every predict, which loads it.)
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType


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
    """Import scikit-learn's compatibility module before anything else does, without pandas."""
    if "sklearn.utils.fixes" in sys.modules:
        return
    with absent("pandas"):
        import sklearn.utils.fixes  # noqa: F401 - imported for its side effect, here and only here
