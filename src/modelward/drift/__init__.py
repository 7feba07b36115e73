"""Data and prediction drift: reference profiles of a model's data, compared with live traffic."""

from __future__ import annotations

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

__all__ = [
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
]
