"""Drift detection: compare live data with a reference, feature by feature, and give a verdict.

Two entry shapes return the same :class:`DriftReport`:

* :func:`compare_samples` takes raw samples (a DataFrame or a mapping of columns) and computes the
  exact KS test and Wasserstein distance, plus PSI and Jensen-Shannon on the reference's quantile
  bins; categorical columns get chi-square, PSI and Jensen-Shannon over every category seen.
* :func:`compare_profiles` takes a reference :class:`~modelward.drift.DatasetProfile` and a live one
  observed on it (``reference.observe(frame)``, merged over a window) and computes the same
  statistics from the bin counts; the KS statistic is then binned, with a documented error bound.

Each feature is judged by its :class:`FeatureRule` (significance on small samples, effect size on
large ones, by default) and the data set by the share of features that drifted. Everything is pure:
numbers in, a typed report out. The reasoning behind the defaults is in ``docs/drift.md``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import pandas as pd

from modelward.drift import stats
from modelward.drift._feature_profile import CategoricalProfile, FeatureProfile, NumericProfile
from modelward.drift._judge import (
    DEFAULT_ALPHA,
    DEFAULT_DRIFT_SHARE,
    DEFAULT_EFFECT_SIZE_ROWS,
    DEFAULT_MISSING_THRESHOLD,
    DEFAULT_THRESHOLD,
    DriftConfig,
    DriftReport,
    Evidence,
    FeatureDrift,
    FeatureRule,
    Method,
    judge,
)
from modelward.drift._profile_base import (
    FloatArray,
    ProfileError,
    ProfileMismatch,
    Values,
    as_series,
    is_temporal,
    numeric_values,
    ranked,
    require,
    sorted_histogram,
    sorted_reference_edges,
    tally_values,
)
from modelward.drift.profile import DatasetProfile, PredictionProfile

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_DRIFT_SHARE",
    "DEFAULT_EFFECT_SIZE_ROWS",
    "DEFAULT_MISSING_THRESHOLD",
    "DEFAULT_THRESHOLD",
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "FeatureRule",
    "Method",
    "SortedNumeric",
    "compare_feature_profiles",
    "compare_profiles",
    "compare_samples",
    "compare_sorted_numeric",
]

Samples: TypeAlias = "pd.DataFrame | Mapping[str, Values]"


# ----------------------------------------------------------------------------------------- samples


def _columns(data: Samples, what: str) -> dict[str, pd.Series[Any]]:
    if isinstance(data, pd.DataFrame):
        names = [str(c) for c in data.columns]
        require(len(set(names)) == len(names), what, "column names must be unique")
        return {name: data.iloc[:, i] for i, name in enumerate(names)}
    require(isinstance(data, Mapping), what, "expected a pandas DataFrame or a mapping of columns")
    columns = {str(k): as_series(v, f"{what} column '{k}'") for k, v in data.items()}
    require(len(columns) == len(data), what, "column names must be unique once stringified")
    return columns


def _is_numeric(name: str, s: pd.Series[Any]) -> bool:
    dtype = s.dtype
    if is_temporal(s) or pd.api.types.is_complex_dtype(dtype):
        raise ProfileError(f"column '{name}' has dtype {dtype}, which cannot be compared yet")
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


class SortedNumeric(NamedTuple):
    """The verdict on one numeric column from its sorted samples, and the histograms behind it."""

    verdict: FeatureDrift
    edges: tuple[float, ...]
    reference_counts: tuple[int, ...]
    current_counts: tuple[int, ...]


def _sorted_evidence(
    name: str, a: FloatArray, b: FloatArray, missing: tuple[int, int], bins: int
) -> tuple[Evidence, tuple[float, ...], tuple[int, ...], tuple[int, ...]]:
    # Both samples are sorted: binning them is a few binary searches, not a pass over the values.
    edges = sorted_reference_edges(stats.finite_part(a), bins)
    r, c = sorted_histogram(edges, a), sorted_histogram(edges, b)
    scores: dict[str, float] = {}
    if a.size and b.size:
        ks, w, w_norm = stats.sorted_ks_and_wasserstein(a, b)
        scores |= {"ks": ks.statistic, "ks_p_value": ks.p_value}
        if w is not None:
            scores["wasserstein_distance"] = w
        if w_norm is not None:
            scores["wasserstein"] = w_norm
        scores |= {"psi": stats.psi(r, c), "js": stats.js_distance(r, c)}
    return Evidence(name, "numeric", a.size, b.size, *missing, scores), edges, r, c


def compare_sorted_numeric(
    name: str,
    reference: FloatArray,
    current: FloatArray,
    *,
    missing: tuple[int, int] = (0, 0),
    config: DriftConfig | None = None,
) -> SortedNumeric:
    """Drift of one numeric column from its two samples already sorted, without missing values.

    The verdict is :func:`compare_samples`'s on the same values (``missing`` counts the missing values
    of the reference and of the current sample, which it judges by their rate), and it comes with the
    reference's quantile edges and both samples' counts on them. For callers that sort the columns
    themselves (:func:`~modelward.monitoring.drift_files.compare_files` reads a file one column at a
    time): nothing here copies or sorts the samples again. Unsorted input or NaN give wrong figures.
    """
    cfg = config or DriftConfig()
    ev, edges, r, c = _sorted_evidence(name, reference, current, missing, cfg.bins)
    return SortedNumeric(judge(ev, cfg.rule(name, ev.kind)), edges, r, c)


def _sample_numeric(name: str, ref: pd.Series[Any], cur: pd.Series[Any], bins: int) -> Evidence:
    x_ref, missing_ref = numeric_values(ref, f"reference column '{name}'")
    x_cur, missing_cur = numeric_values(cur, f"current column '{name}'")
    if not (x_ref.size and x_cur.size):  # no statistics: the rates of missing values judge it
        return Evidence(name, "numeric", x_ref.size, x_cur.size, missing_ref, missing_cur, {})
    a, b = stats.sort(x_ref), stats.sort(x_cur)
    return _sorted_evidence(name, a, b, (missing_ref, missing_cur), bins)[0]


def _sample_categorical(name: str, ref: pd.Series[Any], cur: pd.Series[Any]) -> Evidence:
    t_ref, missing_ref = tally_values(ref, f"reference column '{name}'")
    t_cur, missing_cur = tally_values(cur, f"current column '{name}'")
    n_ref, n_cur = sum(t_ref.values()), sum(t_cur.values())
    scores: dict[str, float] = {}
    unseen = [k for k in ranked(t_cur) if k not in t_ref]
    n_unseen = sum(t_cur[k] for k in unseen)
    if n_ref and n_cur:
        keys = [*ranked(t_ref), *unseen]
        r, c = [t_ref.get(k, 0) for k in keys], [t_cur.get(k, 0) for k in keys]
        scores = _categorical_scores(r, c)
        scores |= {"other_share_reference": 0.0, "other_share_current": n_unseen / n_cur}
    return Evidence(name, "categorical", n_ref, n_cur, missing_ref, missing_cur, scores, n_unseen)


def _categorical_scores(r: list[int], c: list[int]) -> dict[str, float]:
    chi2 = stats.chi_square(r, c)
    return {
        "chi2": chi2.statistic,
        "chi2_p_value": chi2.p_value,
        "psi": stats.psi(r, c),
        "js": stats.js_distance(r, c),
    }


def compare_samples(
    reference: Samples,
    current: Samples,
    *,
    config: DriftConfig | None = None,
    categorical: Collection[str] = (),
) -> DriftReport:
    """Drift of every column of ``reference`` in ``current``, from raw samples.

    Numeric columns (int and float, unless named in ``categorical``) get the exact two-sample KS
    test and Wasserstein distance (normalised by the reference's standard deviation), plus PSI and
    Jensen-Shannon distance on ``config.bins`` quantile bins of the reference (the bins
    :func:`~modelward.drift.build_profile` would make). Other columns are categorical: chi-square,
    PSI and Jensen-Shannon over every category seen in either sample. Missing values are left out of
    the statistics and judged by their rate. Extra columns of ``current`` are ignored; a missing one
    raises :class:`~modelward.drift.ProfileMismatch`. The report has no prediction entries.
    """
    cfg = config or DriftConfig()
    ref, cur = _columns(reference, "reference"), _columns(current, "current")
    absent = [name for name in ref if name not in cur]
    if absent:
        raise ProfileMismatch(f"the current data lacks column(s) {', '.join(absent)}", absent[0])
    wanted = {categorical} if isinstance(categorical, str) else set(categorical)
    unknown = sorted(wanted - set(ref))
    require(not unknown, "compare_samples", f"categorical names unknown column(s) {', '.join(unknown)}")
    cfg.check_features(ref)
    verdicts = []
    for name, r in ref.items():
        numeric = _is_numeric(name, r) and name not in wanted
        if numeric:
            ev = _sample_numeric(name, r, cur[name], cfg.bins)
        else:
            ev = _sample_categorical(name, r, cur[name])
        verdicts.append(judge(ev, cfg.rule(name, ev.kind)))
    return DriftReport.of(tuple(verdicts), (), cfg.drift_share)


# ---------------------------------------------------------------------------------------- profiles


def _reference_scale(ref: NumericProfile) -> float:
    """The reference's standard deviation, 0 exactly when its finite values are all equal."""
    if ref.minimum is None or ref.minimum == ref.maximum:
        return 0.0
    std = ref.std
    if std is not None and std > 0:
        return std
    # The moments cancelled out (values far from 0 with a tiny spread): the histogram's spread.
    points, weights = stats.bin_points(ref.edges), np.asarray(ref.counts, dtype=np.float64)
    return float(np.sqrt(np.cov(points, aweights=weights, ddof=0)))


def _profile_numeric(ref: NumericProfile, cur: NumericProfile) -> Evidence:
    if ref.edges != cur.edges:
        raise ProfileMismatch(f"feature '{ref.name}': the current profile has other bin edges", ref.name)
    scores: dict[str, float] = {}
    if ref.count and cur.count:
        r, c = ref.counts, cur.counts
        ks = stats.ks_binned(r, c)
        scores |= {"ks": ks.statistic, "ks_p_value": ks.p_value, "ks_bound": ks.bound}
        if ref.mean is not None and cur.mean is not None:
            shift = cur.mean - ref.mean
            w = stats.wasserstein_binned(ref.edges, r, c, mean_shift=shift if math.isfinite(shift) else 0.0)
            scale = _reference_scale(ref)
            if w is not None:
                scores["wasserstein_distance"] = w
                if scale > 0:
                    scores["wasserstein"] = w / scale
        scores |= {"psi": stats.psi(r, c), "js": stats.js_distance(r, c)}
    return Evidence(ref.name, "numeric", ref.count, cur.count, ref.missing, cur.missing, scores)


def _profile_categorical(ref: CategoricalProfile, cur: CategoricalProfile) -> Evidence:
    if ref.categories.keys() != cur.categories.keys():
        raise ProfileMismatch(f"feature '{ref.name}': the current profile has other categories", ref.name)
    scores: dict[str, float] = {}
    if ref.count and cur.count:
        r = [*ref.categories.values(), ref.other]
        c = [*(cur.categories[k] for k in ref.categories), cur.other]
        scores = _categorical_scores(r, c)
        scores |= {
            "other_share_reference": ref.other / ref.count,
            "other_share_current": cur.other / cur.count,
        }
    unseen = ref.unseen_in(cur)
    return Evidence(ref.name, "categorical", ref.count, cur.count, ref.missing, cur.missing, scores, unseen)


def _evidence(ref: FeatureProfile, cur: FeatureProfile) -> Evidence:
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        return _profile_numeric(ref, cur)
    if isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
        return _profile_categorical(ref, cur)
    raise ProfileMismatch(f"feature '{ref.name}' is {ref.kind} in the reference and {cur.kind} now", ref.name)


def compare_feature_profiles(
    reference: FeatureProfile, current: FeatureProfile, *, rule: FeatureRule | None = None
) -> FeatureDrift:
    """Drift of one feature from its reference profile and a live profile observed on it.

    ``rule`` defaults to :class:`FeatureRule`'s defaults. Profiles that do not share edges or
    categories raise :class:`~modelward.drift.ProfileMismatch`.
    """
    ev = _evidence(reference, current)
    return judge(ev, (rule or FeatureRule()).check_fits(ev.kind, ev.feature))


def _prediction(
    ref: PredictionProfile | None, cur: PredictionProfile | None, cfg: DriftConfig
) -> list[FeatureDrift]:
    if ref is None or cur is None:
        if ref is not cur:
            raise ProfileMismatch("only one of the profiles has a prediction profile")
        return []
    if ref.task != cur.task or ref.classes != cur.classes:
        raise ProfileMismatch("the prediction profiles differ in task or classes")
    scores = "score" if ref.task == "classification" else "prediction"
    verdicts = []
    for output, r, c in (("prediction", ref.labels, cur.labels), (scores, ref.scores, cur.scores)):
        if r is None or c is None:
            if r is not c:
                raise ProfileMismatch(f"only one of the prediction profiles has {output}s")
            continue
        ev = replace(_evidence(r, c), feature=output)
        verdicts.append(judge(ev, cfg.rule(output, ev.kind, prediction=True)))
    return verdicts


def compare_profiles(
    reference: DatasetProfile, current: DatasetProfile, *, config: DriftConfig | None = None
) -> DriftReport:
    """Drift of every feature (and model output) of ``reference`` in ``current``, from profiles.

    ``current`` must be observed on ``reference`` (``reference.observe(frame)``, possibly merged over
    a window) so that edges, categories and features match; otherwise
    :class:`~modelward.drift.ProfileMismatch`. Prediction drift compares the predicted labels
    (categorical) and the scores or regression predictions (numeric).
    """
    cfg = config or DriftConfig()
    only = sorted(reference.features.keys() ^ current.features.keys())
    if only:
        raise ProfileMismatch(f"feature '{only[0]}' is in only one of the profiles", only[0])
    cfg.check_features(reference.features)
    verdicts = []
    for name, ref in reference.features.items():
        ev = _evidence(ref, current.features[name])
        verdicts.append(judge(ev, cfg.rule(name, ev.kind)))
    prediction = _prediction(reference.prediction, current.prediction, cfg)
    return DriftReport.of(tuple(verdicts), tuple(prediction), cfg.drift_share)
