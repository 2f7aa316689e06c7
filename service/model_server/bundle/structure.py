"""Structural checks of a loaded model's trees and neighbour indexes, before anything predicts with it.

skops only checks that every object in an artifact is of a trusted type, not that its content makes
sense. Four trusted types hold raw indices that scikit-learn's compiled code follows without bounds
checks (skops 0.16 refuses the first two by default for this reason; scikit-learn PR #34558 proposes
the same checks at load time):

- ``sklearn.tree._tree.Tree`` (decision trees, forests, extra trees, gradient boosting, AdaBoost,
  bagging, isolation forest): child and feature indices of every node;
- ``...hist_gradient_boosting.predictor.TreePredictor``: child, feature and bitset indices;
- ``sklearn.neighbors.KDTree`` / ``BallTree``: the sample permutation, each node's sample range, the
  implicit children ``2i+1``/``2i+2``, the bounds array and the distance metric's weights.

A crafted ``model.skops`` whose indices point outside their arrays loads fine and then crashes the
process (or reads other memory) on the first prediction. ``check_structure`` refuses such a model
with a message that names the object and the problem, so the server stays live and says why instead
of crash-looping. It reads the live objects after loading (not the file), and never predicts.

What it checks, per the compiled code of scikit-learn 1.9 that reads these arrays:

- Tree: ``1 <= node_count <= capacity``; every node is a leaf (both children -1) or a split whose two
  children are distinct nodes after itself; every node but the root is the child of exactly one node
  (so every walk from the root ends, inside the array); ``max_depth`` covers the deepest node
  (``decision_path`` sizes its buffer with it); ``0 <= feature < n_features``; at least one value per
  node (gradient boosting reads ``value[node]`` directly).
- Which X reaches a tree: every Tree must be the ``tree_`` of a decision tree whose ``n_features_in_``
  equals the Tree's ``n_features``. Every decision tree directly in an ensemble's ``estimators_`` must
  have been fitted on the ensemble's features (or on ``estimators_features_[i]`` for bagging and
  isolation forest). Gradient boosting goes further than the others: ``predict_stages`` walks the raw
  nodes of ``estimators_[i, k].tree_`` with X checked only against the ensemble and adds into a
  ``(n_samples, n_trees_per_iteration_)`` buffer filled by ``init_``: so ``estimators_`` must be a 2-D
  array of decision trees with one column per output, and ``init_`` must be ``"zero"`` or the
  ``DummyClassifier``/``DummyRegressor`` that fitting makes by default, whose output width is read
  from its attributes. A custom ``init`` estimator is refused: the width of its predictions cannot be
  known without running it.
- TreePredictor: exactly scikit-learn's node dtype; the same tree shape rules (``is_leaf`` marks
  leaves); ``0 <= feature_idx < n_features_in_`` of the owning HistGradientBoosting model; for
  categorical splits ``bitset_idx`` within both bitset arrays (8 uint32 columns) and a feature the
  bin mapper marks categorical (its known-category bitsets have one row per categorical feature). The
  model must not be mid-fit (``_in_fit`` selects the binned path). With categorical features the model
  holds a ``_preprocessor``: it must be exactly the ColumnTransformer that fitting builds (an
  OrdinalEncoder and a ``check_array`` FunctionTransformer over complementary column masks), whose
  output has ``n_features_in_`` columns.
- KDTree/BallTree: 2-D data with at least one row and column; ``idx_array`` a permutation of the rows;
  ``n_nodes == len(node_data) == 2**n_levels - 1``; bounds of shape (2 for KD, 1 for ball, n_nodes,
  n_features); every node reachable from the root has ``0 <= idx_start <= idx_end <= n_samples`` and,
  unless a leaf, children ``2i+2 < n_nodes``; ``leaf_size >= 1``; sample weights one per row; the
  owning neighbours estimator's ``_fit_X`` has the tree's shape and ``n_features_in_`` columns
  (KernelDensity: the tree's data has ``n_features_in_`` columns).

Limits, chosen so that what is not verified is refused rather than guessed:

- A Tree, TreePredictor, KDTree or BallTree found anywhere except where scikit-learn uses it (a
  decision tree's ``tree_``, a HistGradientBoosting model's ``_predictors``, a neighbours estimator's
  ``_tree``, KernelDensity's ``tree_``) is refused: nothing here knows what X would reach it.
- A KDTree/BallTree distance metric must be one of the four the default trust list holds (Euclidean,
  Manhattan, Chebyshev, Minkowski, whose weights must have one entry per feature or none); metrics
  added through TRUSTED_TYPES (haversine reads two columns, Mahalanobis a matrix...) are refused inside
  a tree.
- Sparse ``_fit_X`` matrices and the other trusted types with raw arrays (scipy's BSpline of
  SplineTransformer, libsvm/liblinear models that skops trusts by itself) are not inspected here.
- The object graph is walked through instance dictionaries, slots, containers, object arrays and
  ``functools.partial``; an object reachable only some other way is not seen, and a Tree inside it
  is not used by scikit-learn either.
"""

from __future__ import annotations

import functools
import reprlib
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import BaseEnsemble
from sklearn.ensemble._gb import BaseGradientBoosting
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.metrics._dist_metrics import (
    ChebyshevDistance64,
    EuclideanDistance64,
    ManhattanDistance64,
    MinkowskiDistance64,
)
from sklearn.neighbors import BallTree, KDTree, KernelDensity
from sklearn.neighbors._base import NeighborsBase
from sklearn.neighbors._kd_tree import NodeData
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder
from sklearn.tree import BaseDecisionTree
from sklearn.tree._tree import Tree
from sklearn.utils.validation import check_array

_MISSING = object()
_METRICS = (EuclideanDistance64, ManhattanDistance64, ChebyshevDistance64, MinkowskiDistance64)
_SPECIAL = (Tree, TreePredictor, KDTree, BallTree)
# Leaves of the object walk: they hold no estimator, tree or index.
_OPAQUE = (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic, np.dtype, type)
_CODE = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType)


class StructureError(ValueError):
    """A tree or neighbour index in the model is not one scikit-learn could have fitted."""


def check_structure(estimator: Any) -> None:
    """Raise StructureError naming the object path and the problem, or return if the model is sound.

    Cost, measured on this repository's 2-core machine: the 100-tree iris demo forest 4 ms (its skops
    load takes about 100 ms); a 300-tree forest of 1,000-node trees 24 ms; 300 HistGradientBoosting
    iterations 16 ms; a KDTree over 5,000 rows 0.4 ms. Linear in the number of nodes, plus a constant
    per tree and per depth level.
    """
    checker = _Checker()
    for path, obj in _walk(estimator):
        checker.visit(path, obj)
    checker.refuse_orphans()


class _Checker:
    def __init__(self) -> None:
        self.found: dict[int, str] = {}  # id of each Tree/TreePredictor/KDTree/BallTree -> its path
        self.owned: set[int] = set()  # ... checked in the place scikit-learn uses it
        self.tree_features: dict[int, int] = {}  # id(Tree) -> n_features, once its structure passed

    def visit(self, path: str, obj: Any) -> None:
        if isinstance(obj, _SPECIAL):
            self.found[id(obj)] = path
            return
        try:
            if isinstance(obj, BaseDecisionTree):
                self._decision_tree(path, obj)
            if isinstance(obj, BaseEnsemble):
                self._ensemble(path, obj)
            if isinstance(obj, BaseGradientBoosting):
                self._gradient_boosting(path, obj)
            if isinstance(obj, BaseHistGradientBoosting):
                self._hist_gradient_boosting(path, obj)
            if isinstance(obj, NeighborsBase):
                self._neighbors(path, obj)
            if isinstance(obj, KernelDensity):
                self._kernel_density(path, obj)
        except StructureError:
            raise
        except (TypeError, ValueError, AttributeError, IndexError, KeyError, OverflowError) as e:
            # A crafted attribute of an unexpected kind: refuse rather than guess.
            raise StructureError(f"{_where(path)}: cannot be checked ({type(e).__name__}: {e})") from None

    def refuse_orphans(self) -> None:
        for oid, path in self.found.items():
            if oid not in self.owned:
                raise StructureError(
                    f"{_where(path)}: a tree index outside the place scikit-learn uses it (a decision "
                    "tree's tree_, a HistGradientBoosting model's _predictors, a neighbours estimator's "
                    "_tree, KernelDensity's tree_); nothing bounds the input it would see"
                )

    # ---- decision trees and the ensembles that call them ------------------------------------------

    def _decision_tree(self, path: str, est: Any) -> None:
        tree = _get(est, "tree_")
        if tree is _MISSING:
            return  # not fitted: scikit-learn refuses to predict with it
        where = _join(path, "tree_")
        if type(tree) is not Tree:
            raise StructureError(f"{where}: is a {_type_name(tree)}, not a sklearn.tree._tree.Tree")
        n_in = _count(est, "n_features_in_", path)
        n_features = self._tree(where, tree)
        if n_features != n_in:
            raise StructureError(
                f"{where}: has n_features {n_features} but the decision tree takes {n_in} (n_features_in_)"
            )
        self.owned.add(id(tree))

    def _tree(self, where: str, tree: Any) -> int:
        if id(tree) in self.tree_features:
            return self.tree_features[id(tree)]
        n = int(tree.node_count)
        if not 1 <= n <= int(tree.capacity):
            raise StructureError(f"{where}: node_count {n} is not between 1 and capacity {tree.capacity}")
        if tree.n_outputs < 1 or tree.max_n_classes < 1:
            raise StructureError(f"{where}: has {tree.n_outputs} outputs of {tree.max_n_classes} classes")
        state = tree.__getstate__()
        nodes, values = state["nodes"], state["values"]
        if nodes.shape != (n,) or values.shape != (n, tree.n_outputs, tree.max_n_classes):
            raise StructureError(f"{where}: node and value arrays do not have node_count={n} rows")
        left = nodes["left_child"].astype(np.int64)
        right = nodes["right_child"].astype(np.int64)
        leaf = (left == -1) & (right == -1)
        odd = np.flatnonzero(((left == -1) | (right == -1)) & ~leaf)
        if odd.size:
            i = int(odd[0])
            raise StructureError(
                f"{where}: node {i} has children {left[i]} and {right[i]}: not a leaf (-1, -1) nor a split"
            )
        depth = _check_links(where, left, right, ~leaf)
        if tree.max_depth < depth:
            raise StructureError(f"{where}: max_depth {tree.max_depth} but node depth reaches {depth}")
        n_features = int(tree.n_features)
        _check_features(where, nodes["feature"], ~leaf, n_features, "feature", "n_features")
        self.tree_features[id(tree)] = n_features
        return n_features

    def _ensemble(self, path: str, ens: Any) -> None:
        members = _get(ens, "estimators_")
        if members is _MISSING:
            return
        trees = [
            (i, p, m)
            for i, (p, m) in enumerate(_flat(_join(path, "estimators_"), members))
            if isinstance(m, BaseDecisionTree) and _get(m, "tree_") is not _MISSING
        ]
        if not trees:
            return
        n_in = _count(ens, "n_features_in_", path)
        subsets = _get(ens, "estimators_features_")
        where_subsets = _join(path, "estimators_features_")
        for i, p, member in trees:
            width = _count(member, "n_features_in_", p)
            if subsets is _MISSING:
                if width != n_in:
                    raise StructureError(
                        f"{p}: the tree was fitted on {width} features, the ensemble takes {n_in}"
                    )
                continue
            if not isinstance(subsets, list | tuple) or i >= len(subsets):
                raise StructureError(f"{where_subsets}: has no entry for {p}")
            cols = np.asarray(subsets[i])
            if cols.ndim != 1 or cols.dtype.kind not in "iu" or ((cols < 0) | (cols >= n_in)).any():
                raise StructureError(f"{where_subsets}[{i}]: is not a list of column indices below {n_in}")
            if width != cols.size:
                raise StructureError(
                    f"{p}: the tree was fitted on {width} features, its feature subset has {cols.size}"
                )

    def _gradient_boosting(self, path: str, gb: Any) -> None:
        members = _get(gb, "estimators_")
        if members is _MISSING:
            return
        where = _join(path, "estimators_")
        k = _count(gb, "n_trees_per_iteration_", path)
        if not (isinstance(members, np.ndarray) and members.dtype == object and members.ndim == 2):
            raise StructureError(f"{where}: must be a 2-D object array of trees")
        if members.shape[0] < 1 or members.shape[1] != k:
            raise StructureError(
                f"{where}: has shape {members.shape}, expected (n_stages >= 1, {k}) for "
                f"n_trees_per_iteration_={k}"
            )
        for p, member in _flat(where, members):
            if not isinstance(member, BaseDecisionTree) or type(_get(member, "tree_")) is not Tree:
                raise StructureError(f"{p}: is a {_type_name(member)}, not a fitted regression tree")
        width = self._init_width(path, gb)
        if width < k:
            raise StructureError(
                f"{_join(path, 'init_')}: predicts {width} column(s), the trees add into {k}"
            )

    def _init_width(self, path: str, gb: Any) -> int:
        """Columns of the raw predictions that predict_stages adds the trees into (see _gb.py)."""
        init = _get(gb, "init_")
        where = _join(path, "init_")
        if isinstance(init, str) and init == "zero":
            return _count(gb, "n_trees_per_iteration_", path)
        if is_classifier(gb):
            if type(init) is not DummyClassifier:
                raise StructureError(f"{where}: a {_type_name(init)} init estimator cannot be checked")
            if not getattr(_get(gb, "_loss"), "is_multiclass", False):
                return 1  # predict_proba(X)[:, 1]
            if _get(init, "n_outputs_") != 1:
                raise StructureError(f"{where}: must have one output")
            strategy = _get(init, "_strategy")
            if strategy in ("prior", "stratified"):
                prior = _get(init, "class_prior_")
                if not (isinstance(prior, np.ndarray) and prior.ndim == 1):
                    raise StructureError(f"{where}: class_prior_ is not a 1-D array")
                return int(prior.shape[0])
            if strategy in ("most_frequent", "uniform", "constant"):
                return _count(init, "n_classes_", where)
            raise StructureError(f"{where}: unknown strategy {strategy!r}")
        if type(init) is not DummyRegressor:
            raise StructureError(f"{where}: a {_type_name(init)} init estimator cannot be checked")
        return _count(init, "n_outputs_", where)

    # ---- histogram gradient boosting ---------------------------------------------------------------

    def _hist_gradient_boosting(self, path: str, hgb: Any) -> None:
        predictors = _get(hgb, "_predictors")
        if predictors is _MISSING:
            return
        if _get(hgb, "_in_fit") is not _MISSING:
            raise StructureError(f"{_join(path, '_in_fit')}: the model was saved in the middle of fit")
        n_in = _count(hgb, "n_features_in_", path)
        k = _count(hgb, "n_trees_per_iteration_", path)
        pre = _get(hgb, "_preprocessor")
        if pre is not _MISSING and pre is not None:
            _check_hgb_preprocessor(_join(path, "_preprocessor"), pre, n_in)
        bin_mapper = _get(hgb, "_bin_mapper")
        is_cat = _get(bin_mapper, "is_categorical_")
        where_cat = _join(_join(path, "_bin_mapper"), "is_categorical_")
        if (
            not (isinstance(is_cat, np.ndarray) and is_cat.ndim == 1 and is_cat.dtype.kind in "biu")
            or is_cat.size != n_in
        ):
            raise StructureError(f"{where_cat}: must be a 1-D integer mask of the {n_in} features")
        where = _join(path, "_predictors")
        if not isinstance(predictors, list):
            raise StructureError(f"{where}: must be a list of lists of TreePredictor")
        for i, stage in enumerate(predictors):
            if not isinstance(stage, list) or len(stage) != k:
                raise StructureError(f"{where}[{i}]: must be a list of {k} TreePredictor")
            for j, predictor in enumerate(stage):
                p = f"{where}[{i}][{j}]"
                if type(predictor) is not TreePredictor:
                    raise StructureError(f"{p}: is a {_type_name(predictor)}, not a TreePredictor")
                _check_predictor(p, predictor, n_in, is_cat != 0)  # per owner: its n_in may differ
                self.owned.add(id(predictor))

    # ---- nearest neighbours ------------------------------------------------------------------------

    def _neighbors(self, path: str, est: Any) -> None:
        fit_x = _get(est, "_fit_X")
        if fit_x is _MISSING:
            return
        shape = getattr(fit_x, "shape", None)
        where_x = _join(path, "_fit_X")
        if shape is None or len(shape) != 2:
            raise StructureError(f"{where_x}: is not a 2-D array")
        n_in = _get(est, "n_features_in_")
        if n_in is not _MISSING and shape[1] != n_in:
            raise StructureError(f"{where_x}: has {shape[1]} columns, the estimator takes {n_in}")
        n_fit = _get(est, "n_samples_fit_")
        if n_fit is not _MISSING and shape[0] != n_fit:
            raise StructureError(f"{where_x}: has {shape[0]} rows but n_samples_fit_ is {n_fit}")
        tree = _get(est, "_tree")
        if tree is _MISSING or tree is None:
            return
        where = _join(path, "_tree")
        expected = {"kd_tree": KDTree, "ball_tree": BallTree}.get(str(_get(est, "_fit_method")))
        if expected is not None and type(tree) is not expected:
            raise StructureError(
                f"{where}: is a {_type_name(tree)} but _fit_method needs {expected.__name__}"
            )
        if type(tree) not in (KDTree, BallTree):
            raise StructureError(f"{where}: is a {_type_name(tree)}, not a KDTree or BallTree")
        data_shape = _check_binary_tree(where, tree)
        if data_shape != tuple(shape):
            raise StructureError(f"{where}: holds data of shape {data_shape}, _fit_X has {tuple(shape)}")
        self.owned.add(id(tree))

    def _kernel_density(self, path: str, kde: Any) -> None:
        tree = _get(kde, "tree_")
        if tree is _MISSING:
            return
        where = _join(path, "tree_")
        if type(tree) not in (KDTree, BallTree):
            raise StructureError(f"{where}: is a {_type_name(tree)}, not a KDTree or BallTree")
        _, n_features = _check_binary_tree(where, tree)
        n_in = _count(kde, "n_features_in_", path)
        if n_features != n_in:
            raise StructureError(f"{where}: holds data with {n_features} columns, the estimator takes {n_in}")
        self.owned.add(id(tree))


# ---- checks on the arrays --------------------------------------------------------------------------


def _check_links(where: str, left: np.ndarray, right: np.ndarray, internal: np.ndarray) -> int:
    """Children of every split are distinct nodes after it, every node but the root has exactly one
    parent; return the depth of the deepest node. Vectorised: a 100-tree forest in milliseconds."""
    n = left.shape[0]
    splits = np.flatnonzero(internal)
    lc, rc = left[splits].astype(np.int64), right[splits].astype(np.int64)
    for side, child in (("left", lc), ("right", rc)):
        bad = np.flatnonzero((child <= splits) | (child >= n))
        if bad.size:
            i, c = int(splits[bad[0]]), int(child[bad[0]])
            why = "not after itself" if 0 <= c <= i else f"not a node (there are {n})"
            raise StructureError(f"{where}: node {i} has {side} child {c}, {why}")
    same = np.flatnonzero(lc == rc)
    if same.size:
        raise StructureError(f"{where}: node {int(splits[same[0]])} has the same left and right child")
    parents = np.bincount(np.concatenate([lc, rc]), minlength=n)
    shared = np.flatnonzero(parents > 1)
    if shared.size:
        j = int(shared[0])
        raise StructureError(f"{where}: node {j} is the child of {int(parents[j])} nodes")
    orphan = np.flatnonzero(parents[1:] == 0)
    if orphan.size:
        raise StructureError(f"{where}: node {int(orphan[0]) + 1} is the child of no node")
    # Now a tree: walk it level by level (as many numpy steps as the tree is deep).
    depth, frontier = 0, np.zeros(1, dtype=np.int64)
    while True:
        frontier = frontier[internal[frontier]]
        if not frontier.size:
            return depth
        frontier = np.concatenate([left[frontier], right[frontier]]).astype(np.int64)
        depth += 1


def _check_features(
    where: str, feature: np.ndarray, internal: np.ndarray, n_features: int, field: str, bound: str
) -> None:
    f = feature.astype(np.int64)
    bad = np.flatnonzero(internal & ((f < 0) | (f >= n_features)))
    if bad.size:
        i = int(bad[0])
        raise StructureError(
            f"{where}: node {i} splits on {field} {int(f[i])}, not below {bound}={n_features}"
        )


def _check_predictor(where: str, predictor: Any, n_features: int, categorical: np.ndarray) -> None:
    nodes = _get(predictor, "nodes")
    if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE or nodes.ndim != 1:
        raise StructureError(f"{where}.nodes: is not a 1-D array of scikit-learn's predictor node records")
    if nodes.shape[0] < 1:
        raise StructureError(f"{where}.nodes: is empty")
    internal = nodes["is_leaf"] == 0
    _check_links(f"{where}.nodes", nodes["left"], nodes["right"], internal)
    _check_features(
        f"{where}.nodes", nodes["feature_idx"], internal, n_features, "feature_idx", "n_features_in_"
    )
    rows = []
    for name in ("raw_left_cat_bitsets", "binned_left_cat_bitsets"):
        bits = _get(predictor, name)
        if not (
            isinstance(bits, np.ndarray) and bits.ndim == 2 and bits.shape[1] == 8 and bits.dtype == np.uint32
        ):
            raise StructureError(f"{where}.{name}: is not an array of 8-word uint32 bitsets")
        rows.append(bits.shape[0])
    cat = np.flatnonzero(internal & (nodes["is_categorical"] != 0))
    if not cat.size:
        return
    bitset = nodes["bitset_idx"][cat]
    bad = np.flatnonzero(bitset >= min(rows))
    if bad.size:
        i = int(cat[bad[0]])
        raise StructureError(
            f"{where}.nodes: node {i} uses bitset_idx {int(bitset[bad[0]])}, the bitset arrays have "
            f"{rows[0]} and {rows[1]} rows"
        )
    bad = np.flatnonzero(~categorical[nodes["feature_idx"][cat]])
    if bad.size:
        i = int(cat[bad[0]])
        raise StructureError(
            f"{where}.nodes: node {i} is a categorical split on feature {int(nodes['feature_idx'][i])}, "
            "which the bin mapper does not mark categorical"
        )


def _check_hgb_preprocessor(where: str, pre: Any, n_in: int) -> None:
    """The ColumnTransformer HistGradientBoosting builds for categorical features (gradient_boosting.py
    _preprocess_X): its output, which reaches the predictors, must have n_in columns."""
    if type(pre) is not ColumnTransformer:
        raise StructureError(f"{where}: is a {_type_name(pre)}, not the ColumnTransformer fitting builds")
    steps = _get(pre, "transformers_")
    if not isinstance(steps, list) or not all(isinstance(s, tuple) and len(s) == 3 for s in steps):
        raise StructureError(f"{where}.transformers_: is not a list of (name, transformer, columns)")
    names = [s[0] for s in steps]
    if names[:2] != ["encoder", "numerical"] or any(
        not (isinstance(s[1], str) and s[1] == "drop") for s in steps[2:]
    ):
        raise StructureError(
            f"{where}.transformers_: expected encoder and numerical (then only dropped columns)"
        )
    (_, enc, enc_cols), (_, num, num_cols) = steps[0], steps[1]
    if type(enc) is not OrdinalEncoder or type(num) is not FunctionTransformer:
        raise StructureError(f"{where}: expected an OrdinalEncoder and a FunctionTransformer")
    func = _get(num, "func")
    if not (
        type(func) is functools.partial
        and func.func is check_array
        and not func.args
        and _get(num, "kw_args") in (None, _MISSING)
    ):
        raise StructureError(
            f"{where}: the numerical step is not the check_array pass-through fitting builds"
        )
    masks = [np.asarray(enc_cols), np.asarray(num_cols)]
    if any(m.dtype != bool or m.shape != (n_in,) for m in masks) or not (masks[0] ^ masks[1]).all():
        raise StructureError(f"{where}: the two column masks must split the {n_in} features between them")
    if _get(pre, "n_features_in_") != n_in:
        raise StructureError(f"{where}: takes {_get(pre, 'n_features_in_')} features, the model {n_in}")
    n_cat = int(masks[0].sum())
    cats = _get(enc, "categories_")
    if _get(enc, "n_features_in_") != n_cat or not isinstance(cats, list) or len(cats) != n_cat:
        raise StructureError(f"{where}: the encoder is not fitted on the {n_cat} categorical features")
    by_name = _get(pre, "_transformer_to_input_indices")
    if not isinstance(by_name, dict) or [list(by_name.get(k, ())) for k in ("encoder", "numerical")] != [
        np.flatnonzero(m).tolist() for m in masks
    ]:
        raise StructureError(f"{where}._transformer_to_input_indices: disagrees with the column masks")
    names_in = _get(pre, "feature_names_in_")
    if names_in is not _MISSING and (len(names_in) != n_in or len(set(names_in.tolist())) != n_in):
        raise StructureError(f"{where}.feature_names_in_: must be {n_in} distinct names")


def _check_binary_tree(where: str, tree: Any) -> tuple[int, int]:
    """A KDTree/BallTree as _binary_tree.pxi.tp queries it; return the shape of its data."""
    state = tree.__getstate__()
    data, idx, node_data, bounds = state[0], state[1], state[2], state[3]
    leaf_size, n_levels, n_nodes, metric, weight = state[4], state[5], state[6], state[11], state[12]
    if not (isinstance(data, np.ndarray) and data.ndim == 2 and data.shape[0] >= 1 and data.shape[1] >= 1):
        raise StructureError(f"{where}: data is not a non-empty 2-D array")
    n, d = data.shape
    if not (isinstance(idx, np.ndarray) and idx.shape == (n,)):
        raise StructureError(f"{where}: idx_array does not have one entry per data row ({n})")
    out = np.flatnonzero((idx < 0) | (idx >= n))
    if out.size:
        i = int(out[0])
        raise StructureError(f"{where}: idx_array[{i}] is {int(idx[i])}, not a data row (0..{n - 1})")
    if (np.bincount(idx, minlength=n) != 1).any():
        raise StructureError(f"{where}: idx_array is not a permutation of the {n} data rows")
    if not (isinstance(node_data, np.ndarray) and node_data.dtype == NodeData and node_data.ndim == 1):
        raise StructureError(f"{where}: node_data is not an array of node records")
    if not (1 <= n_levels <= 62 and n_nodes == node_data.shape[0] == 2**n_levels - 1):
        raise StructureError(
            f"{where}: n_levels {n_levels}, n_nodes {n_nodes} and {node_data.shape[0]} node records disagree"
        )
    kind = 2 if type(tree) is KDTree else 1
    if not (isinstance(bounds, np.ndarray) and bounds.shape == (kind, n_nodes, d)):
        raise StructureError(
            f"{where}: node_bounds has shape {getattr(bounds, 'shape', None)}, expected {(kind, n_nodes, d)}"
        )
    if leaf_size < 1:
        raise StructureError(f"{where}: leaf_size {leaf_size} is below 1")
    leaf = node_data["is_leaf"] != 0
    start, end = node_data["idx_start"], node_data["idx_end"]
    reached = np.zeros(n_nodes, dtype=bool)
    reached[0] = True
    first, width = 0, 1  # the nodes of one level: first .. first + width - 1; children at 2i+1, 2i+2
    while first < n_nodes:
        level = np.arange(first, min(first + width, n_nodes))
        level = level[reached[level]]
        bad = np.flatnonzero((start[level] < 0) | (start[level] > end[level]) | (end[level] > n))
        if bad.size:
            i = int(level[bad[0]])
            raise StructureError(
                f"{where}: node {i} covers idx_array[{int(start[i])}:{int(end[i])}], outside 0..{n}"
            )
        split = level[~leaf[level]]
        if split.size and 2 * int(split[-1]) + 2 >= n_nodes:
            i = int(split[-1])
            raise StructureError(
                f"{where}: node {i} is not a leaf but its children {2 * i + 1}, {2 * i + 2} are not nodes "
                f"(there are {n_nodes})"
            )
        reached[2 * split + 1] = True
        reached[2 * split + 2] = True
        first, width = first + width, width * 2
    if type(metric) not in _METRICS:
        raise StructureError(f"{where}: distance metric {_type_name(metric)} cannot be checked inside a tree")
    weights = metric.__getstate__()[1]
    if type(metric) is MinkowskiDistance64 and weights.shape[0] not in (0, d):
        raise StructureError(
            f"{where}: the Minkowski weights have {weights.shape[0]} entries for {d} features"
        )
    if weight is not None and not (isinstance(weight, np.ndarray) and weight.shape == (n,)):
        raise StructureError(f"{where}: sample_weight does not have one entry per data row ({n})")
    return int(n), int(d)


# ---- walking the object graph ----------------------------------------------------------------------


def _walk(root: Any) -> Iterator[tuple[str, Any]]:
    """Every object reachable from ``root`` once, with the first path that reached it (depth-first,
    with an explicit stack: no recursion limit, and shared or cyclic references are seen once)."""
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", root)]
    while stack:
        path, obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield path, obj
        stack.extend(reversed(list(_children(path, obj))))


def _children(path: str, obj: Any) -> Iterator[tuple[str, Any]]:
    """The objects ``obj`` refers to that may hold an estimator or a tree (strings, numbers, numeric
    arrays, classes and functions cannot), with their paths."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(value, _OPAQUE):
                yield f"{path}[{key!r}]", value
            if not isinstance(key, _OPAQUE):
                yield f"{path}.keys()", key
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            if not isinstance(value, _OPAQUE):
                yield f"{path}[{i}]", value
    elif isinstance(obj, set | frozenset):
        for value in obj:
            if not isinstance(value, _OPAQUE):
                yield f"{path}{{...}}", value
    elif isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:  # e.g. category names: format a path only for what is walked into
            for i, value in enumerate(obj.ravel()):
                if not isinstance(value, _OPAQUE):
                    yield _index(path, obj.shape, i), value
    elif isinstance(obj, functools.partial):
        yield f"{path}.func", obj.func
        yield f"{path}.args", obj.args
        yield f"{path}.keywords", obj.keywords
    elif not isinstance(obj, _OPAQUE + _CODE):
        attrs = getattr(obj, "__dict__", None)
        if isinstance(attrs, dict):
            for name, value in attrs.items():
                if not isinstance(value, _OPAQUE):
                    yield _join(path, str(name)), value
        for cls in type(obj).__mro__:
            slots = cls.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                value = getattr(obj, name, None) if name not in ("__dict__", "__weakref__") else None
                if not isinstance(value, _OPAQUE):
                    yield _join(path, name), value


def _flat(path: str, members: Any) -> Iterator[tuple[str, Any]]:
    """The members of a list or an object array (GradientBoosting keeps a 2-D one), with paths."""
    if isinstance(members, np.ndarray):
        for i, member in enumerate(members.ravel()):
            yield _index(path, members.shape, i), member
    elif isinstance(members, list | tuple):
        for i, member in enumerate(members):
            yield f"{path}[{i}]", member


# ---- small helpers ---------------------------------------------------------------------------------


def _get(obj: Any, name: str) -> Any:
    """An instance attribute without running code (no properties, no __getattr__)."""
    attrs = getattr(obj, "__dict__", None)
    return attrs.get(name, _MISSING) if isinstance(attrs, dict) else _MISSING


def _count(obj: Any, name: str, path: str) -> int:
    value = _get(obj, name)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise StructureError(
            f"{_join(path, name)}: must be a non-negative integer, not {reprlib.repr(value)}"
        )
    return int(value)


def _index(path: str, shape: tuple[int, ...], flat: int) -> str:
    """The path of element ``flat`` (C order) of an array: ``estimators_[3, 0]``."""
    index = np.unravel_index(flat, shape) if len(shape) != 1 else (flat,)
    return f"{path}[{', '.join(str(int(j)) for j in index)}]"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _where(path: str) -> str:
    return path or "the model"


def _type_name(obj: Any) -> str:
    if obj is _MISSING:
        return "missing attribute"
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
