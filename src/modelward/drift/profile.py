"""Reference profiles: compact, mergeable, JSON-serialisable summaries of a model's data.

A reference is built once from the training data with :func:`build_profile` (plus, optionally,
:func:`profile_predictions` and :meth:`DatasetProfile.with_prediction`). It fixes the *shape* of every
later profile: numeric bin edges and categorical vocabularies. Live traffic is profiled with
``reference.observe(frame, predictions, probabilities)`` on that shape, so per-minute profiles can be
summed with ``merge`` into windows and compared bin by bin with the reference. Everything here is
pure: numbers in, numbers out, and (de)serialisation to bytes or str.

Numeric edges are the quantiles of the finite reference values for ``bins`` equal-mass bins,
duplicates collapsed; the binning rule is documented on :class:`NumericProfile`. A column with at most
``bins + 1`` distinct values is discrete: every distinct value becomes an edge, plus the midpoint
below the largest, so each value has an inner bin of its own (otherwise the closed last bin would lump
the two largest values together, and a 0/1 flag could not show drift). Infinite values are left out
of the edges; ints beyond 2**53 are binned as floats.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd

from modelward.drift._feature_profile import (
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    feature_from_dict,
    merge_features,
)
from modelward.drift._profile_base import (
    OTHER,
    FloatArray,
    ProfileError,
    ProfileMismatch,
    Values,
    as_series,
    category_key,
    is_temporal,
    n_counts,
    numeric_values,
    ranked,
    read_count,
    read_fields,
    read_list,
    read_mapping,
    read_opt_mapping,
    read_str,
    reference_edges,
    require,
    tally_values,
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
    "nested_columns",
    "nested_values",
    "profile_predictions",
]

PROFILE_FORMAT = "modelward.profile/1"
SCORE_EDGES: tuple[float, ...] = tuple(np.linspace(0.0, 1.0, 21).tolist())
Task: TypeAlias = Literal["classification", "regression"]


def _skeleton(name: str, dtype: str, edges: tuple[float, ...]) -> NumericProfile:
    return NumericProfile(name, dtype, 0, 0, edges, (0,) * n_counts(len(edges)), None, None, 0.0, 0.0)


def _reference_numeric(name: str, values: pd.Series[Any], bins: int) -> NumericProfile:
    x, _ = numeric_values(values, f"column '{name}'")
    return _skeleton(name, str(values.dtype), reference_edges(x[np.isfinite(x)], bins)).observe(values)


def _scores(probabilities: npt.ArrayLike, n_classes: int) -> FloatArray:
    """P(positive class) for binary models, the top class probability for multiclass ones."""
    try:
        p = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"probabilities are not numeric ({exc})") from None
    if p.ndim == 1 and n_classes in (0, 2):
        return p
    if p.ndim != 2 or p.shape[1] < 2 or (n_classes and p.shape[1] != n_classes):
        raise ProfileError(
            f"probabilities of shape {p.shape} do not fit {n_classes} classes: expected one column per "
            "class (pass classes= in the model's column order), or one P(positive) per row if binary"
        )
    # sklearn's convention: column 1 is classes[1], the positive class of a binary model.
    return p[:, 1] if p.shape[1] == 2 else np.asarray(p.max(axis=1), dtype=np.float64)


def _check_rows(n: int, probabilities: npt.ArrayLike | None) -> None:
    if probabilities is not None and len(np.asarray(probabilities)) != n:
        raise ProfileError(f"{len(np.asarray(probabilities))} rows of probabilities for {n} predictions")


@dataclass(frozen=True, slots=True)
class PredictionProfile:
    """Profile of a model's outputs.

    Classification: ``labels`` counts the predicted labels over all ``classes`` (model order, as
    strings), and ``scores`` histograms P(positive class) for binary models, or the top class
    probability for multiclass ones, on the fixed edges :data:`SCORE_EDGES`; ``scores`` is None when
    the reference had no probabilities. Regression: ``scores`` histograms the predictions on quantile
    edges, ``labels`` is None and ``classes`` empty.
    """

    task: Task
    labels: CategoricalProfile | None
    scores: NumericProfile | None
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        what = "prediction profile"
        require(self.task in ("classification", "regression"), what, f"unknown task {self.task!r}")
        if self.task == "regression":
            ok = self.labels is None and not self.classes and self.scores is not None
            require(ok, what, "a regression profile has scores only: no labels, no classes")
        require(self.task == "regression" or self.labels is not None, what, "classification needs labels")

    def observe(self, predictions: Values, probabilities: npt.ArrayLike | None = None) -> PredictionProfile:
        """Profile of new predictions on these edges and classes.

        Without probabilities, ``scores`` comes back empty (count 0). Probabilities for a profile
        without scores raise :class:`ProfileError`: there would be nothing to compare them with.
        """
        if self.task == "regression" or self.labels is None:
            require(probabilities is None, "regression predictions", "they take no probabilities")
            return replace(self, scores=self.scores.observe(predictions) if self.scores else None)
        labels = as_series(predictions, "predictions")
        _check_rows(len(labels), probabilities)
        scores = self.scores
        if scores is None:
            require(probabilities is None, "probabilities", "the reference was profiled without them")
        elif probabilities is None:
            scores = scores.empty()
        else:
            scores = scores.observe(_scores(probabilities, len(self.classes)))
        return replace(self, labels=self.labels.observe(labels), scores=scores)

    def empty(self) -> PredictionProfile:
        return replace(
            self,
            labels=self.labels.empty() if self.labels else None,
            scores=self.scores.empty() if self.scores else None,
        )

    def merge(self, other: PredictionProfile) -> PredictionProfile:
        if self.task != other.task or self.classes != other.classes:
            raise ProfileMismatch("cannot merge prediction profiles of different tasks or classes")
        if (self.scores is None) != (other.scores is None):
            raise ProfileMismatch("cannot merge a prediction profile with scores and one without")
        return replace(
            self,
            labels=self.labels.merge(other.labels) if self.labels and other.labels else None,
            scores=self.scores.merge(other.scores) if self.scores and other.scores else None,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "task": self.task,
            "classes": list(self.classes),
            "labels": self.labels.to_dict() if self.labels else None,
            "scores": self.scores.to_dict() if self.scores else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> PredictionProfile:
        what = "prediction profile"
        doc = read_fields(
            d, what, task=read_str, classes=read_list, labels=read_opt_mapping, scores=read_opt_mapping
        )
        labels, scores = doc["labels"], doc["scores"]
        return cls(
            task=doc["task"],  # __post_init__ rejects an unknown task
            labels=None if labels is None else CategoricalProfile.from_dict(labels),
            scores=None if scores is None else NumericProfile.from_dict(scores),
            classes=tuple(read_str(c, f"{what}: class") for c in doc["classes"]),
        )


@dataclass(frozen=True, slots=True)
class DatasetProfile:
    """Profiles of every feature of a data set, in column order, and optionally of the model's outputs.

    Every feature profile covers all ``n_rows`` rows. The prediction profile may cover other rows
    (a reference often profiles predictions on held-out data rather than on the training rows).
    """

    n_rows: int
    features: dict[str, FeatureProfile]
    prediction: PredictionProfile | None
    format: str = PROFILE_FORMAT

    def __post_init__(self) -> None:
        # A copy, so that the caller's dict cannot change a frozen profile behind its back.
        object.__setattr__(self, "features", dict(self.features))
        ok = self.format == PROFILE_FORMAT
        require(ok, "profile", f"format {self.format!r} is not supported; expected {PROFILE_FORMAT!r}")
        require(self.n_rows >= 0, "profile", "n_rows must not be negative")
        for name, f in self.features.items():
            require(f.name == name, f"feature '{name}'", f"its profile is named '{f.name}'")
            require(f.n == self.n_rows, f"feature '{name}'", f"covers {f.n} rows, not {self.n_rows}")

    def observe(
        self,
        frame: pd.DataFrame,
        predictions: Values | None = None,
        probabilities: npt.ArrayLike | None = None,
    ) -> DatasetProfile:
        """Profile of ``frame`` (and the model's outputs for it) on these edges and categories.

        Extra columns are ignored; a missing one raises :class:`ProfileError`. Without predictions
        the prediction profile comes back empty.
        """
        columns = {str(c): i for i, c in enumerate(frame.columns)}
        absent = [name for name in self.features if name not in columns]
        require(not absent, "frame", f"lacks the profiled column(s) {', '.join(absent)}")
        features = {name: f.observe(frame.iloc[:, columns[name]]) for name, f in self.features.items()}
        prediction = self.prediction
        if predictions is None:
            require(probabilities is None, "probabilities", "given without predictions")
            prediction = prediction.empty() if prediction else None
        else:
            require(prediction is not None, "predictions", "this profile has no prediction profile")
            labels = as_series(predictions, "predictions")
            require(len(labels) == len(frame), "predictions", f"{len(labels)} for {len(frame)} rows")
            prediction = prediction.observe(labels, probabilities) if prediction else None
        return DatasetProfile(len(frame), features, prediction)

    def empty(self) -> DatasetProfile:
        features = {name: f.empty() for name, f in self.features.items()}
        return DatasetProfile(0, features, self.prediction.empty() if self.prediction else None)

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        only = sorted(self.features.keys() ^ other.features.keys())
        if only:
            raise ProfileMismatch(f"feature '{only[0]}' is in only one of the profiles", only[0])
        if (self.prediction is None) != (other.prediction is None):
            raise ProfileMismatch("only one of the profiles has a prediction profile")
        features = {name: merge_features(f, other.features[name]) for name, f in self.features.items()}
        prediction = self.prediction.merge(other.prediction) if self.prediction and other.prediction else None
        return DatasetProfile(self.n_rows + other.n_rows, features, prediction)

    def with_prediction(self, prediction: PredictionProfile | None) -> DatasetProfile:
        return replace(self, prediction=prediction)

    def to_dict(self) -> dict[str, object]:
        return {
            "format": self.format,
            "n_rows": self.n_rows,
            "features": [f.to_dict() for f in self.features.values()],
            "prediction": self.prediction.to_dict() if self.prediction else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> DatasetProfile:
        doc = read_mapping(d, "profile")
        fmt = doc.get("format")
        if fmt != PROFILE_FORMAT:
            raise ProfileError(
                f"profile format {fmt!r} is not supported; this modelward reads {PROFILE_FORMAT!r}"
            )
        fields = read_fields(
            doc, "profile", n_rows=read_count, features=read_list, prediction=read_opt_mapping
        )
        features = [feature_from_dict(f) for f in fields["features"]]
        by_name = {f.name: f for f in features}
        require(len(by_name) == len(features), "profile", "two features have the same name")
        prediction = fields["prediction"]
        return cls(
            n_rows=fields["n_rows"],
            features=by_name,
            prediction=None if prediction is None else PredictionProfile.from_dict(prediction),
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str) -> DatasetProfile:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ProfileError(f"profile is not valid JSON: {exc}") from None
        return cls.from_dict(read_mapping(doc, "profile"))


_NESTED_TYPES = (list, tuple, dict, np.ndarray)


def _is_nested(s: pd.Series[Any]) -> bool:
    if s.dtype != object:
        return False
    first = s.first_valid_index()
    return first is not None and isinstance(s.loc[first], _NESTED_TYPES)


def nested_values(values: npt.ArrayLike) -> bool:
    """True when ``values`` hold a list, array or object per row (a model's list of scores per row)."""
    array = np.asarray(values) if not isinstance(values, np.ndarray) else values
    return array.ndim > 1 or _is_nested(pd.Series(array.reshape(-1)[:1], dtype=object))


def nested_columns(frame: pd.DataFrame) -> list[str]:
    """The columns whose values are lists, arrays or objects (MLflow ``Array``, ``Object`` and tensor
    inputs): profiles have no bins or categories for them, so callers leave them out and say so."""
    return [str(c) for i, c in enumerate(frame.columns) if _is_nested(frame.iloc[:, i])]


def _reference_feature(
    name: str, s: pd.Series[Any], bins: int, max_categories: int, categorical: bool
) -> FeatureProfile:
    dtype = s.dtype
    if _is_nested(s):
        raise ProfileError(
            f"column '{name}' holds lists or objects, which are not profiled: leave it out "
            "(nested_columns names such columns) or summarise it (its length, for instance)"
        )
    if is_temporal(s) or pd.api.types.is_complex_dtype(dtype):
        raise ProfileError(
            f"column '{name}' has dtype {dtype}, which cannot be profiled yet: "
            "convert it to numbers (e.g. an age in days) or drop it"
        )
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype) and not categorical:
        return _reference_numeric(name, s, bins)
    tally, missing = tally_values(s, f"column '{name}'")
    categories = dict(list(ranked(tally).items())[:max_categories])
    count = sum(tally.values())
    return CategoricalProfile(name, str(dtype), count, missing, categories, count - sum(categories.values()))


def build_profile(
    frame: pd.DataFrame, *, bins: int = 20, max_categories: int = 50, categorical: Collection[str] = ()
) -> DatasetProfile:
    """Reference profile of ``frame``, without predictions (see :func:`profile_predictions`).

    Int and float columns get a :class:`NumericProfile` on ``bins`` quantile bins, unless named in
    ``categorical``; bool, object, string and category columns get a :class:`CategoricalProfile` of
    their ``max_categories`` most frequent values. Datetime, timedelta and period columns raise
    :class:`ProfileError` naming the column (not supported yet). Column names are stringified.
    """
    require(isinstance(frame, pd.DataFrame), "build_profile", "expects a pandas DataFrame")
    require(bins >= 1 and max_categories >= 1, "build_profile", "bins and max_categories must be >= 1")
    names = [str(c) for c in frame.columns]
    require(len(set(names)) == len(names), "build_profile", "column names must be unique")
    wanted = {categorical} if isinstance(categorical, str) else set(categorical)
    unknown = sorted(wanted - set(names))
    require(not unknown, "build_profile", f"categorical names unknown column(s) {', '.join(unknown)}")
    features = {
        name: _reference_feature(name, frame.iloc[:, i], bins, max_categories, name in wanted)
        for i, name in enumerate(names)
    }
    return DatasetProfile(len(frame), features, None)


def profile_predictions(
    predictions: Values,
    probabilities: npt.ArrayLike | None = None,
    classes: Sequence[object] | None = None,
    *,
    task: Task | None = None,
    bins: int = 20,
) -> PredictionProfile:
    """Reference profile of a model's outputs; see :class:`PredictionProfile`.

    The task is classification when ``probabilities`` or ``classes`` are given, else regression.
    ``classes`` are the model's classes in probability-column order (sklearn's ``classes_``); without
    them, the sorted distinct predicted labels stand in, which fails if some class is never predicted.
    Binary ``probabilities`` may be one column of P(classes[1]).
    """
    if task is None:
        task = "classification" if probabilities is not None or classes is not None else "regression"
    require(task in ("classification", "regression"), "task", f"unknown task {task!r}")
    s = as_series(predictions, "predictions")
    if task == "regression":
        require(probabilities is None and classes is None, "regression", "takes no probabilities or classes")
        require(bins >= 1, "profile_predictions", "bins must be >= 1")
        return PredictionProfile("regression", None, _reference_numeric("prediction", s, bins), ())
    _check_rows(len(s), probabilities)
    tally, missing = tally_values(s, "predictions")
    keys = tuple(sorted(tally)) if classes is None else tuple(category_key(c) for c in classes)
    require(len(set(keys)) == len(keys), "classes", f"{keys} has duplicates")
    # Every class is a category, predicted or not, so that live windows can show a class appear.
    categories = ranked(dict.fromkeys(keys, 0) | tally)
    labels = CategoricalProfile("prediction", str(s.dtype), sum(tally.values()), missing, categories, 0)
    scores = None
    if probabilities is not None:
        scores = _skeleton("score", "float64", SCORE_EDGES).observe(_scores(probabilities, len(keys)))
    return PredictionProfile("classification", labels, scores, keys)
