"""Drift rules and verdicts: :class:`FeatureRule`, :class:`DriftConfig`, :class:`FeatureDrift`,
:class:`DriftReport`, and the rule that turns a feature's statistics into a verdict.

Private: import the public names from ``modelward.drift`` or ``modelward.drift.detect``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple, TypeAlias

from modelward.drift._profile_base import json_float
from modelward.drift.stats import chi_square
from modelward.errors import ConfigError

Method: TypeAlias = Literal["auto", "ks", "chi2", "psi", "js", "wasserstein"]
Kind: TypeAlias = Literal["numeric", "categorical"]

METHODS: tuple[Method, ...] = ("auto", "ks", "chi2", "psi", "js", "wasserstein")
DEFAULT_ALPHA = 0.05
DEFAULT_EFFECT_SIZE_ROWS = 5_000
DEFAULT_THRESHOLD = 0.1
DEFAULT_MISSING_THRESHOLD = 0.1
DEFAULT_DRIFT_SHARE = 0.5
PREDICTION_OUTPUTS = ("prediction", "score")

_P_VALUE_METHODS = {"ks": "ks_p_value", "chi2": "chi2_p_value"}
_LABELS = {"ks": "KS", "chi2": "chi-square", "psi": "PSI", "js": "JS distance", "wasserstein": "Wasserstein"}
_FITS: dict[Kind, tuple[Method, ...]] = {
    "numeric": ("auto", "ks", "psi", "js", "wasserstein"),
    "categorical": ("auto", "chi2", "psi", "js"),
}


def _check(ok: bool, problem: str) -> None:
    if not ok:
        raise ConfigError(problem)


@dataclass(frozen=True, slots=True)
class FeatureRule:
    """How one feature decides it drifted.

    ``method`` "auto" (the default) tests significance on small samples and effect size on large
    ones: while either sample has fewer than ``effect_size_rows`` non-missing values, drift means a
    p-value below ``alpha`` (KS for numeric features, chi-square for categorical ones); from then
    on it means an effect size above ``threshold`` (normalised Wasserstein for numeric features,
    PSI for categorical ones). An explicit method always applies: "ks" and "chi2" compare their
    p-value with ``alpha``; "psi", "js" and "wasserstein" compare the statistic with ``threshold``.
    ``threshold`` None means 0.1 for every effect size.

    Missing values are judged apart: a feature also drifted when its missing rate moved by more
    than ``missing_threshold`` (absolute, 0.1 is ten percentage points) and, on windows of fewer
    than ``effect_size_rows`` rows, a chi-square test of missing versus present counts gives a
    p-value below ``alpha``. A ``missing_threshold`` of 1 turns that off.
    """

    method: Method = "auto"
    threshold: float | None = None
    alpha: float = DEFAULT_ALPHA
    effect_size_rows: int = DEFAULT_EFFECT_SIZE_ROWS
    missing_threshold: float = DEFAULT_MISSING_THRESHOLD

    def __post_init__(self) -> None:
        _check(self.method in METHODS, f"drift method {self.method!r} is not one of {', '.join(METHODS)}")
        t = self.threshold
        _check(t is None or (math.isfinite(t) and t >= 0), f"drift threshold {t} must be finite and >= 0")
        _check(0 < self.alpha < 1, f"alpha {self.alpha} must be between 0 and 1")
        rows = self.effect_size_rows
        _check(isinstance(rows, int) and rows >= 0, f"effect_size_rows {rows!r} must be an int >= 0")
        _check(
            0 <= self.missing_threshold <= 1, f"missing_threshold {self.missing_threshold} is not in [0, 1]"
        )

    def check_fits(self, kind: Kind, feature: str) -> FeatureRule:
        """This rule, if its method applies to a ``kind`` feature; else :class:`ConfigError`."""
        _check(self.method in _FITS[kind], f"method {self.method!r} does not fit {kind} feature '{feature}'")
        return self


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """Rules for every feature, per-feature overrides, and the data set's verdict.

    ``numeric`` and ``categorical`` apply to features of that kind; ``features`` replaces them, as a
    whole, for the features it names, and ``predictions`` does the same for the model's outputs
    (``"prediction"``: predicted labels, or a regression's predictions; ``"score"``: the scores). The
    data set drifted when at least ``drift_share`` of its features did. ``bins`` is the number of
    reference quantile bins on which raw samples are binned for PSI and Jensen-Shannon.
    """

    numeric: FeatureRule = FeatureRule()
    categorical: FeatureRule = FeatureRule()
    features: Mapping[str, FeatureRule] = field(default_factory=dict)
    predictions: Mapping[str, FeatureRule] = field(default_factory=dict)
    drift_share: float = DEFAULT_DRIFT_SHARE
    bins: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", dict(self.features))
        object.__setattr__(self, "predictions", dict(self.predictions))
        self.numeric.check_fits("numeric", "*")
        self.categorical.check_fits("categorical", "*")
        rules = [*self.features.values(), *self.predictions.values()]
        _check(all(isinstance(r, FeatureRule) for r in rules), "overrides must be FeatureRule objects")
        unknown = sorted(set(self.predictions) - set(PREDICTION_OUTPUTS))
        _check(not unknown, f"prediction rules name {', '.join(unknown)}: use 'prediction' or 'score'")
        _check(0 < self.drift_share <= 1, f"drift_share {self.drift_share} must be in (0, 1]")
        _check(isinstance(self.bins, int) and self.bins >= 1, f"bins {self.bins!r} must be an int >= 1")

    def check_features(self, names: Collection[str]) -> None:
        """Raise :class:`ConfigError` if an override names a feature that is not compared."""
        unknown = sorted(set(self.features) - set(names))
        _check(not unknown, f"drift rules name unknown feature(s) {', '.join(unknown)}")

    def rule(self, name: str, kind: Kind, *, prediction: bool = False) -> FeatureRule:
        rule = (self.predictions if prediction else self.features).get(name)
        if rule is None:
            return self.numeric if kind == "numeric" else self.categorical
        return rule.check_fits(kind, name)


def _scores_json(scores: Mapping[str, float]) -> dict[str, float | str]:
    return {k: json_float(v) for k, v in scores.items()}


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """The verdict on one feature (or model output), and every statistic behind it.

    ``method`` is what decided ("ks", "chi2", "psi", "js", "wasserstein"; "none" when nothing could
    be compared), ``statistic`` its value and ``threshold`` its limit: for "ks" and "chi2" drift
    means ``p_value < threshold``, for the others ``statistic > threshold``. ``p_value`` is None
    for effect sizes. ``n_reference`` and ``n_current`` count the non-missing values compared.
    ``scores`` holds all statistics computed (see ``docs/drift.md``), ``reason`` says why in words.
    ``unseen`` counts the current values of a categorical feature that the reference never had
    (categories unseen in training); None for numeric features, and for a reference that kept only
    its most frequent categories, where a value outside them may have been seen.
    """

    feature: str
    kind: Kind
    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    scores: dict[str, float]
    reason: str
    unseen: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "method": self.method,
            "statistic": json_float(self.statistic),
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "scores": _scores_json(self.scores),
            "reason": self.reason,
            "unseen": self.unseen,
        }


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Verdicts on every feature and model output, and on the data set as a whole.

    ``share_drifted`` is the share of ``features`` that drifted (0 without features);
    ``dataset_drift`` is ``share_drifted >= threshold_share``. Prediction drift is reported apart and
    does not count in the share.
    """

    features: tuple[FeatureDrift, ...]
    prediction: tuple[FeatureDrift, ...]
    share_drifted: float
    dataset_drift: bool
    threshold_share: float

    @classmethod
    def of(
        cls, features: tuple[FeatureDrift, ...], prediction: tuple[FeatureDrift, ...], threshold_share: float
    ) -> DriftReport:
        share = sum(f.drifted for f in features) / len(features) if features else 0.0
        return cls(features, prediction, share, bool(features) and share >= threshold_share, threshold_share)

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.feature for f in self.features if f.drifted)

    @property
    def prediction_drift(self) -> bool:
        return any(p.drifted for p in self.prediction)

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.feature == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: plain types only, no NaN (non-finite statistics, if any, become strings)."""
        return {
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "threshold_share": self.threshold_share,
            "drifted_features": list(self.drifted_features),
            "prediction_drift": self.prediction_drift,
            "features": [f.to_dict() for f in self.features],
            "prediction": [p.to_dict() for p in self.prediction],
        }


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a comparison measured on one feature: the input of :func:`judge`."""

    feature: str
    kind: Kind
    n_reference: int
    n_current: int
    missing_reference: int
    missing_current: int
    scores: dict[str, float]  # statistics; empty when either side has no values
    unseen: int | None = None  # current values in no category the reference ever had


def _missing_scores(ev: Evidence, rows_ref: int, rows_cur: int) -> dict[str, float]:
    ref = ev.missing_reference / rows_ref if rows_ref else 0.0
    cur = ev.missing_current / rows_cur if rows_cur else 0.0
    return {"missing_rate_reference": ref, "missing_rate_current": cur, "missing_rate_change": cur - ref}


class _Decision(NamedTuple):
    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    reason: str


def _decide(ev: Evidence, rule: FeatureRule) -> _Decision:
    """The verdict on the values' distribution (missing values aside)."""
    s, method = ev.scores, rule.method
    small = min(ev.n_reference, ev.n_current) < rule.effect_size_rows
    note = ""
    if method == "auto":
        method = ("ks" if small else "wasserstein") if ev.kind == "numeric" else ("chi2" if small else "psi")
        rows = f"{rule.effect_size_rows:,}"
        size = f"fewer than {rows} values on a side" if small else f"{rows}+ values on each side"
        note = f" ({size}: judged by {'significance' if small else 'effect size'})"
    if method == "wasserstein" and "wasserstein" not in s:
        method, note = "psi", " (the reference is constant, so Wasserstein cannot be normalised)"
    label = _LABELS[method]
    if method in _P_VALUE_METHODS:
        stat, p = s[method], s[_P_VALUE_METHODS[method]]
        drifted = p < rule.alpha
        why = f"{label} p-value {p:.3g} {'<' if drifted else '>='} {rule.alpha:g}{note}"
        return _Decision(method, stat, p, rule.alpha, drifted, why)
    threshold = DEFAULT_THRESHOLD if rule.threshold is None else rule.threshold
    stat = s[method]
    drifted = stat > threshold
    why = f"{label} {stat:.3g} {'>' if drifted else '<='} {threshold:g}{note}"
    return _Decision(method, stat, None, threshold, drifted, why)


def _missing_drifted(ev: Evidence, rule: FeatureRule, rows_ref: int, rows_cur: int) -> str | None:
    s = ev.scores
    change = s["missing_rate_change"]
    if abs(change) <= rule.missing_threshold:
        return None
    if min(rows_ref, rows_cur) < rule.effect_size_rows:
        p = chi_square([ev.n_reference, ev.missing_reference], [ev.n_current, ev.missing_current]).p_value
        if p >= rule.alpha:
            return None
    ref, cur = s["missing_rate_reference"], s["missing_rate_current"]
    return f"missing rate {ref:.1%} -> {cur:.1%} (moved more than {rule.missing_threshold:.0%})"


def judge(ev: Evidence, rule: FeatureRule) -> FeatureDrift:
    """The verdict on one feature: see :class:`FeatureRule` and ``docs/drift.md``."""
    rows_ref, rows_cur = ev.n_reference + ev.missing_reference, ev.n_current + ev.missing_current
    ev = replace(ev, scores=ev.scores | _missing_scores(ev, rows_ref, rows_cur))
    if rows_cur == 0:
        d = _Decision(
            "none", 0.0, None, 0.0, False, "the current window is empty: no rows, so no evidence of drift"
        )
    elif rows_ref == 0:
        d = _Decision("none", 0.0, None, 0.0, False, "the reference is empty: nothing to compare with")
    elif ev.n_reference and ev.n_current:
        d = _decide(ev, rule)
    else:
        side = "current window" if ev.n_reference else "reference"
        d = _Decision("none", 0.0, None, 0.0, False, f"the {side} has only missing values")
    missing = _missing_drifted(ev, rule, rows_ref, rows_cur) if rows_ref and rows_cur else None
    if missing:
        d = d._replace(drifted=True, reason=f"{d.reason}; {missing}" if d.method != "none" else missing)
    return FeatureDrift(
        ev.feature,
        ev.kind,
        d.method,
        d.statistic,
        d.p_value,
        d.threshold,
        d.drifted,
        ev.n_reference,
        ev.n_current,
        ev.scores,
        d.reason,
        ev.unseen,
    )
