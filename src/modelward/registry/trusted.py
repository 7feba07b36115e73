"""Types trusted when loading scikit-learn (and LightGBM scikit-learn API) models saved with skops.

skops refuses to build any type it does not trust. Its defaults cover scikit-learn estimators and
NumPy/SciPy containers; the types below are the ones that common estimators still need. Each was
reviewed: they are data holders rebuilt from arrays and numbers (tree structures, distance metrics,
optimiser state), or plain functions used as parameters, and none runs code from the file.

MLflow's own skops loader reads the trusted list from the model's MLmodel file, which the model's
author controls; modelward instead loads with this list, plus what the user explicitly trusted at
registration (pinned by sha256 with the artifacts) or in settings.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["REVIEWED_TRUSTED_TYPES", "untrusted_beyond_reviewed"]

REVIEWED_TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "collections.OrderedDict",
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.isotonic.IsotonicRegression",
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.feature_selection._univariate_selection.chi2",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.sklearn.LGBMRanker",
    }
)


def untrusted_beyond_reviewed(found: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """The types skops reported as untrusted that are neither reviewed nor explicitly trusted."""
    allowed = REVIEWED_TRUSTED_TYPES | set(extra)
    return sorted(t for t in set(found) if t not in allowed)
