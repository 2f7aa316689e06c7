"""scipy.stats deferred (imports.py): each check runs in a fresh interpreter, since the stand-in
replaces a module for the whole process. What a model computes, and what skops trusts, must not
change; scipy.stats must load the moment anything really uses it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any


def run(code: str, deferred: bool = True) -> Any:
    """Run ``code`` in a new interpreter (after the server's own first import when ``deferred``) and
    return what it printed last, as JSON."""
    prelude = "from model_server import imports\nimports.import_scikit_learn_without_pandas()\n"
    script = (prelude if deferred else "") + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_names_file_matches_the_installed_scipy() -> None:
    # In a fresh interpreter, as it is generated: this one may have imported more of scipy.stats.
    check = [sys.executable, "-m", "model_server.imports", "--check"]
    assert subprocess.run(check, capture_output=True, text=True).returncode == 0


def test_serving_the_demo_forest_never_imports_scipy_stats_and_predicts_the_same(iris_bundle: Path) -> None:
    code = f"""
    import json, sys
    from pathlib import Path
    from model_server import imports
    from model_server.bundle.skops_import import import_skops_io
    import_skops_io()
    import model_server.http.server, model_server.grpc.server
    from model_server.metrics import Metrics
    from model_server.runtime.lifecycle import ModelRuntime
    from model_server.settings import Settings
    rt = ModelRuntime(Settings(), Metrics(), Path({str(iris_bundle)!r}))
    rt.load()
    row = dict(sepal_length=6.1, sepal_width=2.8, petal_length=4.7, petal_width=1.2)
    rows = rt.schema.from_records([row])
    p = rt.predict_rows(rows, True)
    print(json.dumps([str(rt.state), p.predictions.tolist(), p.probabilities.tolist(),
                      "scipy.stats._stats_py" in sys.modules]))
    """
    deferred, plain = run(code), run(code, deferred=False)
    assert deferred[0] == "State.READY"
    assert deferred[1:3] == plain[1:3]
    assert deferred[3] is False and plain[3] is True


def test_skops_trusts_the_same_types_with_the_stand_in() -> None:
    code = """
    import json
    from model_server.bundle.skops_import import import_skops_io
    import_skops_io()
    from skops.io import _trusted_types as t
    names = sorted(n for n in dir(t) if n.isupper())
    print(json.dumps({n: sorted(map(str, getattr(t, n))) for n in names if isinstance(getattr(t, n), list)}))
    """
    assert run(code) == run(code, deferred=False)


def test_a_name_bound_at_import_loads_scipy_stats_when_called() -> None:
    code = """
    import json, sys
    from sklearn.metrics._ranking import rankdata
    from model_server import imports
    before = imports.stats_deferred()
    ranks = rankdata([30, 10, 20]).tolist()
    import scipy.stats
    print(json.dumps([before, imports.stats_deferred(), ranks, scipy.stats.rankdata([30, 10, 20]).tolist()]))
    """
    before, after, ranks, real = run(code)
    assert (before, after) == (True, False)
    assert ranks == real == [3.0, 1.0, 2.0]


def test_the_stand_in_module_answers_like_scipy_stats() -> None:
    code = """
    import json
    from scipy import stats
    from model_server import imports
    try:
        stats.no_such_name
        missing = "no error"
    except AttributeError as e:
        missing = str(e)
    still = imports.stats_deferred()
    median = stats.norm.ppf(0.5)  # an object: loads the real module when looked into
    loaded = not imports.stats_deferred()
    import scipy.stats as real
    same = [stats.norm is real.norm, stats.rv_continuous is real.rv_continuous]
    print(json.dumps([missing, still, median, loaded, *same]))
    """
    missing, still, median, loaded, same_norm, same_class = run(code)
    assert missing == "module 'scipy.stats' has no attribute 'no_such_name'"
    assert still is True and loaded is True
    assert median == 0.0
    assert same_norm and same_class  # once loaded, the module's names are the real ones


def test_a_class_or_a_submodule_imports_the_real_module_at_once() -> None:
    code = """
    import json
    import scipy.stats
    cls = scipy.stats.rv_continuous
    from model_server import imports
    after_class = imports.stats_deferred()
    import scipy.stats.mstats
    median = float(scipy.stats.mstats.mquantiles([1, 2, 3, 4], [0.5])[0])
    print(json.dumps([after_class, cls.__name__, median]))
    """
    assert run(code) == [False, "rv_continuous", 2.5]
    sub = """
    import json
    from scipy.stats.mstats import mquantiles
    from model_server import imports
    print(json.dumps([imports.stats_deferred(), float(mquantiles([1, 2, 3, 4], [0.5])[0])]))
    """
    assert run(sub) == [False, 2.5]


def test_a_model_that_uses_scipy_stats_to_predict_gets_it() -> None:
    code = """
    import json
    import numpy as np
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import QuantileTransformer
    from sklearn.linear_model import LinearRegression
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)); y = X @ [1.0, 2.0, 3.0]
    normal = QuantileTransformer(n_quantiles=50, output_distribution="normal")
    model = make_pipeline(normal, LinearRegression())
    model.fit(X, y)
    print(json.dumps(model.predict(X[:5]).round(10).tolist()))
    """
    assert run(code) == run(code, deferred=False)
