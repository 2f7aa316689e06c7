"""Which types a skops artifact may instantiate: decided by the server's configuration, never by the bundle.

skops already trusts plain containers, numpy arrays and most scikit-learn estimators by itself; a
fitted model also needs a few more (tree structures, kd-trees, loss objects...), which
``skops.io.get_untrusted_types`` reports. ``DEFAULT_TRUSTED_TYPES`` is what it reported for the
classifiers, regressors and transformers in ``sklearn.utils.all_estimators()`` fitted on numeric data
(leaving out ``numpy.mean`` and a scipy array-API alias that only FeatureAgglomeration and
SplineTransformer keep) and for Pipelines/ColumnTransformers with OneHotEncoder/StandardScaler/
SimpleImputer fitted on DataFrames (scikit-learn 1.9, skops 0.16), plus the siblings another
hyperparameter selects (the other losses, links, kernels, distance metrics and optimisers of the same
families). Every entry is a scikit-learn, numpy or scipy type or function that builds data, never one
that runs arbitrary code (no ``builtins.eval``, ``functools.partial``, ``operator.*``...). Anything
else must be listed in ``TRUSTED_TYPES`` by whoever deploys the model.

Four entries hold raw indices that scikit-learn's compiled code follows without bounds checks:
``Tree`` and ``TreePredictor`` (which skops 0.16 refuses by default for that reason), ``KDTree`` and
``BallTree``. A crafted artifact with such indices out of range loads, then crashes the process on
its first prediction. They are trusted here because ``load_bundle`` runs ``structure.check_structure``
on the loaded model before anything predicts with it, which refuses any of them whose indices (and
the input width of the model that calls them) are not what fitting produces.
"""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        # trees: forests, extra trees, gradient boosting, AdaBoost, bagging, isolation forest
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        # losses kept by gradient boosting and generalised linear models
        "sklearn._loss.loss.AbsoluteError",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfGammaLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfPoissonLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss.loss.HalfTweedieLoss",
        "sklearn._loss.loss.HalfTweedieLossIdentity",
        "sklearn._loss.loss.HuberLoss",
        "sklearn._loss.loss.PinballLoss",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
        # nearest neighbours
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        # neural networks, calibration, gaussian processes
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
        "sklearn.gaussian_process.kernels.ConstantKernel",
        "sklearn.gaussian_process.kernels.Product",
        "sklearn.gaussian_process.kernels.Sum",
        "sklearn.gaussian_process.kernels.RBF",
        "sklearn.gaussian_process.kernels.WhiteKernel",
        "sklearn.gaussian_process.kernels.Matern",
        "sklearn.gaussian_process.kernels.DotProduct",
        # feature selection scores, spline features, column selection by dtype
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.feature_selection._univariate_selection.chi2",
        "scipy.interpolate._bsplines.BSpline",
        "sklearn.compose._column_transformer.make_column_selector",
    }
)


class UntrustedTypesError(Exception):
    def __init__(self, types: list[str]) -> None:
        self.types = types
        super().__init__(
            f"the artifact needs types that are not trusted: {', '.join(types)}. If you know where this "
            "model comes from and trust these types, add them to TRUSTED_TYPES (comma-separated)"
        )


def trusted_types(extra: Iterable[str] = ()) -> frozenset[str]:
    return DEFAULT_TRUSTED_TYPES | frozenset(extra)


def check_trusted(needed: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """Return the types to pass to ``skops.io.loads``, or raise naming every type not trusted."""
    allowed = trusted_types(extra)
    needed = sorted(set(needed))
    refused = [t for t in needed if t not in allowed]
    if refused:
        raise UntrustedTypesError(refused)
    return needed
