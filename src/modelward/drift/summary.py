"""A reference profile in a few numbers per feature: what ``modelward show`` and the model card print.

Pure: a :class:`~modelward.drift.DatasetProfile` in, plain JSON-ready values out. The histogram of a
feature is the profile's own bins (numeric edges or categories), trimmed of empty bins and capped at
:data:`~modelward.drift.html.MAX_BARS` bars, so a card's chart and its table show the same counts.
"""

from __future__ import annotations

from typing import Any

from modelward.drift._feature_profile import CategoricalProfile, FeatureProfile, NumericProfile
from modelward.drift.html import MAX_BARS, numeric_bin_labels
from modelward.drift.profile import DatasetProfile

__all__ = ["feature_histogram", "profile_summary"]


def profile_summary(profile: DatasetProfile | None, *, histograms: bool = False) -> dict[str, Any] | None:
    """``{"rows", "features": {name: {kind, missing_rate, min, max, mean, bins | categories}}}``;
    with ``histograms`` each feature also carries ``histogram`` (see :func:`feature_histogram`)."""
    if profile is None:
        return None
    features = {}
    for name, feature in profile.features.items():
        entry: dict[str, Any] = {"kind": feature.kind, "missing_rate": round(feature.missing_rate, 6)}
        if isinstance(feature, NumericProfile):
            entry.update(
                {
                    "min": feature.minimum,
                    "max": feature.maximum,
                    "mean": feature.mean,
                    "bins": len(feature.counts),
                }
            )
        elif isinstance(feature, CategoricalProfile):
            entry["categories"] = len(feature.categories)
        if histograms:
            entry["histogram"] = feature_histogram(feature)
        features[name] = entry
    return {"rows": profile.n_rows, "features": features}


def feature_histogram(feature: FeatureProfile) -> dict[str, list[Any]]:
    """``{"bins": [label, ...], "counts": [n, ...]}`` of the non-empty bins of one feature's profile."""
    if isinstance(feature, NumericProfile):
        pairs = list(zip(numeric_bin_labels(feature.edges), feature.counts, strict=True))
    elif isinstance(feature, CategoricalProfile):
        pairs = [*feature.categories.items(), ("(other)", feature.other)]
    else:
        return {"bins": [], "counts": []}
    pairs = [(label, int(n)) for label, n in pairs if n]
    if len(pairs) > MAX_BARS:  # categories beyond the cap become one bar, numeric bins are never this many
        rest = pairs[MAX_BARS - 1 :]
        pairs = [*pairs[: MAX_BARS - 1], (f"({len(rest)} more)", sum(n for _, n in rest))]
    return {"bins": [str(label) for label, _ in pairs], "counts": [n for _, n in pairs]}
