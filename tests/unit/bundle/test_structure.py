"""The structure check (model_server/bundle/structure.py): every model scikit-learn fits passes it, and each
crafted tree or neighbour index that scikit-learn's compiled code would follow out of bounds is
refused with a message naming the object and the problem, also after a skops round trip.

The end-to-end refusal by a real server process, and the crash the check prevents, are in
tests/integration/reliability/test_hostile_trees.py.
"""

from __future__ import annotations

import copy
import inspect
import json
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from model_server.bundle import artifact
from model_server.bundle.load import load_bundle
from model_server.bundle.package import package
from model_server.bundle.structure import StructureError, check_structure
from model_server.bundle.trust import trusted_types
from model_server.errors import BundleError
from model_server.settings import Settings
from sklearn.base import RegressorMixin
from sklearn.ensemble import (
    AdaBoostClassifier,
    AdaBoostRegressor,
    BaggingClassifier,
    BaggingRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
    RandomTreesEmbedding,
    StackingClassifier,
    VotingRegressor,
)
from sklearn.feature_selection import SelectKBest, f_regression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics._dist_metrics import MinkowskiDistance64
from sklearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    LocalOutlierFactor,
    NearestNeighbors,
    RadiusNeighborsClassifier,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils import all_estimators
from threadpoolctl import threadpool_limits

# What a deployer adds to TRUSTED_TYPES for two of the models below (the default list lacks them):
# HistGradientBoosting with categorical features keeps a functools.partial of check_array, stacking and
# voting keep a Bunch of their estimators. Nothing else here needs more than the defaults.
EXTRA_TYPES = ("functools.partial", "sklearn.utils.validation.check_array", "sklearn.utils._bunch.Bunch")

rng = np.random.default_rng(0)
X = rng.normal(size=(120, 4))
Y2 = (X[:, 0] > 0).astype(int)
Y3 = np.arange(120) % 3
# Column 0 is a category 0..4 that decides the class: the boosted trees split on it categorically.
XC = np.c_[rng.integers(0, 5, 120), X[:, 1:]].astype(float)
YC = np.isin(XC[:, 0], (1, 3)).astype(int)


def round_trip(model: Any) -> Any:
    """Save and load with skops exactly as the server would (its trust list, nothing more)."""
    data = sio.dumps(model)
    needed = sio.get_untrusted_types(data=data)
    assert set(needed) <= trusted_types(EXTRA_TYPES), needed
    return sio.loads(data, trusted=needed)


def ordinary_models() -> list[tuple[Any, Any]]:
    """(fitted model, a few rows it predicts on)."""
    df = pd.DataFrame({"c": pd.Categorical(rng.choice(list("abc"), 120)), "x": X[:, 0]})
    models = [
        RandomForestClassifier(10, random_state=0).fit(X, Y3),
        ExtraTreesRegressor(10, random_state=0).fit(X, X[:, 0]),
        GradientBoostingClassifier(n_estimators=5).fit(X, Y3),
        GradientBoostingClassifier(n_estimators=5).fit(X, Y2),
        GradientBoostingClassifier(n_estimators=5, init="zero").fit(X, Y3),
        GradientBoostingRegressor(n_estimators=5, loss="huber").fit(X, X[:, 0]),
        HistGradientBoostingClassifier(max_iter=5).fit(X, Y3),
        AdaBoostClassifier(n_estimators=5).fit(X, Y2),
        AdaBoostRegressor(n_estimators=5).fit(X, X[:, 0]),
        BaggingClassifier(DecisionTreeClassifier(), n_estimators=5, max_features=0.5).fit(X, Y2),
        BaggingRegressor(n_estimators=5, max_features=2, bootstrap_features=True).fit(X, X[:, 0]),
        IsolationForest(n_estimators=5, max_features=0.75).fit(X),
        RandomTreesEmbedding(n_estimators=5).fit(X),
        KNeighborsClassifier(algorithm="kd_tree").fit(X, Y2),
        KNeighborsRegressor(algorithm="ball_tree", leaf_size=3).fit(X, X[:, 0]),
        KNeighborsClassifier(algorithm="brute").fit(X, Y2),
        NearestNeighbors(algorithm="kd_tree", p=3).fit(X),
        KNeighborsClassifier(algorithm="ball_tree", metric="minkowski", metric_params={"w": np.ones(4)}).fit(
            X, Y2
        ),
        LocalOutlierFactor(novelty=True).fit(X),
        RadiusNeighborsClassifier(radius=3.0, algorithm="kd_tree").fit(X, Y2),
        make_pipeline(StandardScaler(), RandomForestRegressor(5)).fit(X, X[:, 0]),
        make_pipeline(StandardScaler(), KNeighborsClassifier(algorithm="kd_tree")).fit(X, Y2),
        StackingClassifier([("rf", RandomForestClassifier(3)), ("kn", KNeighborsClassifier())]).fit(X, Y2),
        VotingRegressor(
            [
                ("gb", GradientBoostingRegressor(n_estimators=3)),
                ("h", HistGradientBoostingRegressor(max_iter=3)),
            ]
        ).fit(X, X[:, 0]),
    ]
    return [(m, X[:5]) for m in models] + [
        (HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(XC, YC), XC[:5]),
        (HistGradientBoostingRegressor(max_iter=5).fit(df, X[:, 1]), df[:5]),
    ]


def test_tree_and_neighbour_models_pass_after_a_skops_round_trip() -> None:
    for model, rows in ordinary_models():
        check_structure(model)
        loaded = round_trip(model)
        check_structure(loaded)
        if hasattr(loaded, "predict"):  # and what passed still predicts like the original
            np.testing.assert_array_equal(loaded.predict(rows), model.predict(rows))


# Fitting every estimator with its defaults takes long for a few; these keep the sweep to seconds.
FAST: dict[str, dict[str, Any]] = {
    "HistGradientBoostingClassifier": {"max_iter": 10},
    "HistGradientBoostingRegressor": {"max_iter": 10},
    "LogisticRegressionCV": {"Cs": 2, "cv": 2},
    "DictionaryLearning": {"max_iter": 5},
    "MiniBatchDictionaryLearning": {"max_iter": 5},
    "MiniBatchKMeans": {"n_init": 1},
}
NOT_FITTED_HERE = {"TSNE", "MeanShift"}  # no trees or indexes kept, and slow to fit


def test_every_estimator_scikit_learn_fits_passes() -> None:
    """all_estimators(): whatever fits on small data (meta-estimators around decision trees or
    ensembles of them) passes the check, so no ordinary model is refused."""
    Xp = np.abs(X[:60]) + 0.1
    checked, skipped = [], []
    with threadpool_limits(1):  # OpenMP threads on a busy 2-core machine make the small fits slower
        for name, est in _fitted_estimators(Xp, skipped):
            check_structure(est)
            checked.append(name)
    print(f"structure check passed on {len(checked)} fitted estimators; could not fit {skipped}")
    for must in (
        "RandomForestClassifier",
        "GradientBoostingRegressor",
        "HistGradientBoostingClassifier",
        "IsolationForest",
        "KNeighborsClassifier",
        "BaggingClassifier",
        "StackingRegressor",
    ):
        assert must in checked
    assert len(checked) > 150


def _fitted_estimators(Xp: np.ndarray, skipped: list[str]) -> Iterator[tuple[str, Any]]:
    for name, cls in all_estimators():
        if name in NOT_FITTED_HERE:
            continue
        try:
            est = _build(cls, dict(FAST.get(name, {})))
        except TypeError:
            skipped.append(name)  # needs arguments that have no generic value (ColumnTransformer...)
            continue
        for y in (Y3[:60], np.c_[Y3[:60], Y2[:60]]):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # convergence, deprecations: not the point here
                    est.fit(Xp, y)
                break
            except Exception:  # noqa: BLE001 - not fittable on this data (e.g. binary only): skip it
                continue
        else:
            skipped.append(name)
            continue
        yield name, est


def _build(cls: type, params: dict[str, Any]) -> Any:
    sig = inspect.signature(cls).parameters
    regressor = issubclass(cls, RegressorMixin)
    if "estimator" in sig and sig["estimator"].default is inspect.Parameter.empty:
        params["estimator"] = (
            DecisionTreeRegressor(max_depth=4) if regressor else DecisionTreeClassifier(max_depth=4)
        )
    if "estimators" in sig and sig["estimators"].default is inspect.Parameter.empty:
        params["estimators"] = (
            [("gb", GradientBoostingRegressor(n_estimators=3)), ("rf", RandomForestRegressor(3))]
            if regressor
            else [("et", ExtraTreesClassifier(3)), ("kn", KNeighborsClassifier(algorithm="kd_tree"))]
        )
    return cls(**params)


def test_the_object_walk_survives_cycles_and_deep_nesting() -> None:
    model = RandomForestClassifier(3, random_state=0).fit(X, Y2)
    model.loop_ = []
    model.loop_.append(model.loop_)
    deep: list[Any] = [model.estimators_[0]]
    for _ in range(5_000):  # far beyond Python's recursion limit (and skops' own nesting)
        deep = [deep]
    model.deep_ = deep
    check_structure(model)


def test_cost_on_the_demo_forest(iris_bundle: Path) -> None:
    """The iris demo forest (100 trees) is checked at every start: print what that costs."""
    model = load_bundle(iris_bundle, Settings()).estimator
    times = []
    for _ in range(5):
        start = time.perf_counter()
        check_structure(model)
        times.append(time.perf_counter() - start)
    print(f"structure check of the {len(model.estimators_)}-tree demo forest: {min(times) * 1000:.1f} ms")


# ---- crafted corruptions ---------------------------------------------------------------------------


def rebuilt_tree(tree: Any, edit: Callable[[np.ndarray], None] = lambda _: None, **changes: Any) -> Any:
    """A copy of a fitted sklearn Tree with its node array edited (and n_features or max_depth set),
    built the way skops loads one: Tree(n_features, n_classes, n_outputs) then __setstate__."""
    cls, (n_features, n_classes, n_outputs), state = tree.__reduce__()
    state = dict(state, nodes=state["nodes"].copy())
    edit(state["nodes"])
    if "max_depth" in changes:
        state["max_depth"] = changes["max_depth"]
    new = cls(changes.get("n_features", n_features), n_classes, n_outputs)
    new.__setstate__(state)
    return new


def rebuilt_binary_tree(tree: Any, **changes: Any) -> Any:
    """A copy of a KDTree/BallTree with parts of its pickled state replaced."""
    state = list(tree.__getstate__())
    fields = ["data", "idx_array", "node_data", "node_bounds", "leaf_size", "n_levels", "n_nodes"]
    for name, value in changes.items():
        state[fields.index(name) if name in fields else {"dist_metric": 11}[name]] = value
    new = type(tree).__new__(type(tree))
    new.__setstate__(tuple(state))
    return new


def splits(tree: Any) -> np.ndarray:
    return np.flatnonzero(tree.children_left != -1)


def _forest() -> Any:
    return RandomForestClassifier(5, max_depth=6, random_state=0).fit(X, Y3)


def _gb() -> Any:
    return GradientBoostingClassifier(n_estimators=3, random_state=0).fit(X, Y3)


def _hgb() -> Any:
    return HistGradientBoostingClassifier(max_iter=3, categorical_features=[0], random_state=0).fit(XC, YC)


def _kd() -> Any:
    return KNeighborsClassifier(algorithm="kd_tree", leaf_size=5).fit(X, Y2)


def _ball() -> Any:
    return KNeighborsRegressor(algorithm="ball_tree", leaf_size=5, p=3, metric_params={"w": np.ones(4)}).fit(
        X, X[:, 0]
    )


@dataclass
class Corruption:
    base: Callable[[], Any]
    corrupt: Callable[[Any], str]  # edits the model in place, returns the phrase the refusal must hold


def child_out_of_range(m: Any) -> str:
    m.estimators_[1].tree_ = rebuilt_tree(
        m.estimators_[1].tree_, lambda n: n["left_child"].__setitem__(0, 2**50)
    )
    return f"estimators_[1].tree_: node 0 has left child {2**50}, not a node (there are"


def child_backwards(m: Any) -> str:
    tree = m.estimators_[2].tree_
    i = int(splits(tree)[1])
    m.estimators_[2].tree_ = rebuilt_tree(tree, lambda n: n["right_child"].__setitem__(i, 0))
    return f"estimators_[2].tree_: node {i} has right child 0, not after itself"


def shared_child(m: Any) -> str:
    tree = m.estimators_[0].tree_
    left = tree.children_left
    a = int(left[0])  # root's left child, a split: its own left child becomes the root's right child too
    assert left[a] != -1
    c = int(left[a])
    m.estimators_[0].tree_ = rebuilt_tree(tree, lambda n: n["right_child"].__setitem__(0, c))
    return f"estimators_[0].tree_: node {c} is the child of 2 nodes"


def half_leaf(m: Any) -> str:
    m.estimators_[0].tree_ = rebuilt_tree(
        m.estimators_[0].tree_, lambda n: n["left_child"].__setitem__(0, -1)
    )
    return "estimators_[0].tree_: node 0 has children -1 and"


def feature_out_of_range(m: Any) -> str:
    m.estimators_[3].tree_ = rebuilt_tree(m.estimators_[3].tree_, lambda n: n["feature"].__setitem__(0, 4))
    return "estimators_[3].tree_: node 0 splits on feature 4, not below n_features=4"


def max_depth_too_small(m: Any) -> str:
    m.estimators_[4].tree_ = rebuilt_tree(m.estimators_[4].tree_, max_depth=1)
    return "estimators_[4].tree_: max_depth 1 but node depth reaches"


def tree_wider_than_its_estimator(m: Any) -> str:
    m.estimators_[0].tree_ = rebuilt_tree(
        m.estimators_[0].tree_, lambda n: n["feature"].__setitem__(0, 9), n_features=10
    )
    return "estimators_[0].tree_: has n_features 10 but the decision tree takes 4"


def tree_wider_than_the_ensemble(m: Any) -> str:
    # Gradient boosting walks the raw nodes with X checked against the ensemble's 4 features only.
    member = m.estimators_[1, 2]
    member.tree_ = rebuilt_tree(member.tree_, lambda n: n["feature"].__setitem__(0, 9), n_features=10)
    member.n_features_in_ = 10
    return "estimators_[1, 2]: the tree was fitted on 10 features, the ensemble takes 4"


def init_narrower_than_the_trees(m: Any) -> str:
    m.init_.class_prior_ = m.init_.class_prior_[:2]
    return "init_: predicts 2 column(s), the trees add into 3"


def gb_member_not_a_tree(m: Any) -> str:
    m.estimators_[0, 1] = LogisticRegression()
    return "estimators_[0, 1]: is a sklearn.linear_model._logistic.LogisticRegression, not a fitted"


def _hgb_split(m: Any, categorical: bool) -> tuple[Any, int]:
    for stage in m._predictors:
        predictor = stage[0]
        nodes = predictor.nodes
        found = np.flatnonzero((nodes["is_leaf"] == 0) & ((nodes["is_categorical"] != 0) == categorical))
        if found.size:
            return predictor, int(found[0])
    raise AssertionError("no such split in the fitted model")


def hgb_feature_out_of_range(m: Any) -> str:
    predictor, i = _hgb_split(m, categorical=False)
    predictor.nodes = predictor.nodes.copy()
    predictor.nodes["feature_idx"][i] = 4
    return f".nodes: node {i} splits on feature_idx 4, not below n_features_in_=4"


def hgb_bitset_out_of_range(m: Any) -> str:
    predictor, i = _hgb_split(m, categorical=True)
    predictor.nodes = predictor.nodes.copy()
    predictor.nodes["bitset_idx"][i] = 1000
    return f".nodes: node {i} uses bitset_idx 1000, the bitset arrays have"


def hgb_child_out_of_range(m: Any) -> str:
    predictor = m._predictors[0][0]
    predictor.nodes = predictor.nodes.copy()
    predictor.nodes["right"][0] = 2**31
    return f"_predictors[0][0].nodes: node 0 has right child {2**31}, not a node"


def hgb_categorical_split_on_numeric_feature(m: Any) -> str:
    predictor, i = _hgb_split(m, categorical=True)
    predictor.nodes = predictor.nodes.copy()
    predictor.nodes["feature_idx"][i] = 2
    return f".nodes: node {i} is a categorical split on feature 2, which the bin mapper does not mark"


def _two_hgbs() -> Any:
    """One model fitted on the 4 features, one behind a selector of 2 (so the second takes 2)."""
    target = X[:, 3] + X[:, 2]
    return VotingRegressor(
        [
            ("wide", HistGradientBoostingRegressor(max_iter=3)),
            (
                "narrow",
                make_pipeline(SelectKBest(f_regression, k=2), HistGradientBoostingRegressor(max_iter=3)),
            ),
        ]
    ).fit(X, target)


def hgb_predictor_shared_with_a_narrower_model(m: Any) -> str:
    # The same TreePredictor object in both: fine for the wide model, out of bounds for the narrow one.
    wide, narrow = m.estimators_[0], m.estimators_[1].steps[1][1]
    predictor = wide._predictors[0][0]
    assert predictor.nodes["feature_idx"][predictor.nodes["is_leaf"] == 0].max() >= 2
    narrow._predictors[0][0] = predictor
    return "not below n_features_in_=2"


def kd_idx_out_of_range(m: Any) -> str:
    idx = m._tree.get_arrays()[1].copy()
    idx[3] = 120
    m._tree = rebuilt_binary_tree(m._tree, idx_array=idx)
    return "_tree: idx_array[3] is 120, not a data row (0..119)"


def kd_idx_end_beyond_samples(m: Any) -> str:
    nodes = m._tree.get_arrays()[2].copy()
    nodes["idx_end"][1] = 121
    m._tree = rebuilt_binary_tree(m._tree, node_data=nodes)
    return "_tree: node 1 covers idx_array[0:121], outside 0..120"


def kd_bounds_too_narrow(m: Any) -> str:
    bounds = np.ascontiguousarray(m._tree.get_arrays()[3][:, :, :2])
    m._tree = rebuilt_binary_tree(m._tree, node_bounds=bounds)
    return "_tree: node_bounds has shape (2, "


def ball_split_without_children(m: Any) -> str:
    nodes = m._tree.get_arrays()[2].copy()
    last = len(nodes) - 1
    nodes["is_leaf"][last] = 0
    m._tree = rebuilt_binary_tree(m._tree, node_data=nodes)
    return f"_tree: node {last} is not a leaf but its children {2 * last + 1}, {2 * last + 2} are not nodes"


def ball_minkowski_weights_too_short(m: Any) -> str:
    metric = MinkowskiDistance64.__new__(MinkowskiDistance64)
    p, _, mat = m._tree.__getstate__()[11].__getstate__()
    metric.__setstate__((p, np.ones(2), mat))
    m._tree = rebuilt_binary_tree(m._tree, dist_metric=metric)
    return "_tree: the Minkowski weights have 2 entries for 4 features"


def brute_fit_x_too_narrow(m: Any) -> str:
    m._fit_method, m._tree, m._fit_X = "brute", None, np.ascontiguousarray(m._fit_X[:, :3])
    return "_fit_X: has 3 columns, the estimator takes 4"


def orphan_tree(m: Any) -> str:
    m.steps[0][1].hidden_ = copy.deepcopy(_forest().estimators_[0].tree_)
    return "steps[0][1].hidden_: a tree index outside the place scikit-learn uses it"


CORRUPTIONS = {
    f.__name__: Corruption(base, f)
    for base, fs in (
        (
            _forest,
            [
                child_out_of_range,
                child_backwards,
                shared_child,
                half_leaf,
                feature_out_of_range,
                max_depth_too_small,
                tree_wider_than_its_estimator,
            ],
        ),
        (_gb, [tree_wider_than_the_ensemble, init_narrower_than_the_trees, gb_member_not_a_tree]),
        (
            _hgb,
            [
                hgb_feature_out_of_range,
                hgb_bitset_out_of_range,
                hgb_child_out_of_range,
                hgb_categorical_split_on_numeric_feature,
            ],
        ),
        (_two_hgbs, [hgb_predictor_shared_with_a_narrower_model]),
        (_kd, [kd_idx_out_of_range, kd_idx_end_beyond_samples, kd_bounds_too_narrow, brute_fit_x_too_narrow]),
        (_ball, [ball_split_without_children, ball_minkowski_weights_too_short]),
        (lambda: make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y2), [orphan_tree]),
    )
    for f in fs
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_crafted_index_is_refused_naming_the_object_and_problem(name: str) -> None:
    case = CORRUPTIONS[name]
    model = case.base()
    check_structure(model)  # the fitted model itself passes
    phrase = case.corrupt(model)
    with pytest.raises(StructureError) as err:
        check_structure(model)
    assert phrase in str(err.value), str(err.value)
    if name == "gb_member_not_a_tree":
        return  # an unfitted LogisticRegression has nothing to save: the in-memory check is the point
    # skops keeps the corruption (it checks types, not content), and the check sees it on the loaded model
    with pytest.raises(StructureError) as err:
        check_structure(round_trip(model))
    assert phrase in str(err.value), str(err.value)


def test_load_bundle_refuses_a_crafted_forest_with_the_reason(tmp_path: Path) -> None:
    model = _forest()
    bundle = package(model, X, name="forest", version="1", out=tmp_path / "forest")
    child_out_of_range(model)
    # What an attacker who controls the bundle writes: the crafted artifact and its matching checksum.
    data = artifact.dumps(model)
    (bundle / "model.skops").write_bytes(data)
    meta = json.loads((bundle / "metadata.json").read_text())
    meta["artifact"]["sha256"] = artifact.sha256(data)
    (bundle / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError) as err:
        load_bundle(bundle, Settings())
    assert str(err.value).startswith(
        f"model.skops failed the structure check: estimators_[1].tree_: node 0 has left child {2**50}"
    ), str(err.value)
