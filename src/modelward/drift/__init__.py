"""Data and prediction drift: reference profiles of a model's data, compared with live traffic."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelward._lazy import lazy_exports

if TYPE_CHECKING:
    from modelward.drift.detect import (
        DriftConfig,
        DriftReport,
        FeatureDrift,
        FeatureRule,
        compare_feature_profiles,
        compare_profiles,
        compare_samples,
    )
    from modelward.drift.html import Histogram, profile_histograms, render_html
    from modelward.drift.profile import (
        OTHER,
        PROFILE_FORMAT,
        SCORE_EDGES,
        CategoricalProfile,
        DatasetProfile,
        FeatureProfile,
        NumericProfile,
        PredictionProfile,
        ProfileError,
        ProfileMismatch,
        Task,
        build_profile,
        profile_predictions,
    )
    from modelward.drift.stats import (
        PSI_EPSILON,
        BinnedKS,
        Significance,
        chi_square,
        js_distance,
        ks_binned,
        ks_exact,
        psi,
        wasserstein_binned,
        wasserstein_normalized,
    )

__all__ = [
    "OTHER",
    "PROFILE_FORMAT",
    "PSI_EPSILON",
    "SCORE_EDGES",
    "BinnedKS",
    "CategoricalProfile",
    "DatasetProfile",
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "FeatureProfile",
    "FeatureRule",
    "Histogram",
    "NumericProfile",
    "PredictionProfile",
    "ProfileError",
    "ProfileMismatch",
    "Significance",
    "Task",
    "build_profile",
    "chi_square",
    "compare_feature_profiles",
    "compare_profiles",
    "compare_samples",
    "js_distance",
    "ks_binned",
    "ks_exact",
    "profile_histograms",
    "profile_predictions",
    "psi",
    "render_html",
    "wasserstein_binned",
    "wasserstein_normalized",
]

# Imported when first read (PEP 562): a process that needs one module of this package does not
# pay for the others.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "detect": (
            "DriftConfig",
            "DriftReport",
            "FeatureDrift",
            "FeatureRule",
            "compare_feature_profiles",
            "compare_profiles",
            "compare_samples",
        ),
        "html": ("Histogram", "profile_histograms", "render_html"),
        "profile": (
            "OTHER",
            "PROFILE_FORMAT",
            "SCORE_EDGES",
            "CategoricalProfile",
            "DatasetProfile",
            "FeatureProfile",
            "NumericProfile",
            "PredictionProfile",
            "ProfileError",
            "ProfileMismatch",
            "Task",
            "build_profile",
            "profile_predictions",
        ),
        "stats": (
            "PSI_EPSILON",
            "BinnedKS",
            "Significance",
            "chi_square",
            "js_distance",
            "ks_binned",
            "ks_exact",
            "psi",
            "wasserstein_binned",
            "wasserstein_normalized",
        ),
    },
)
