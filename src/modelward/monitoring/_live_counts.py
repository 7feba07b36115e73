"""Counting served rows on a reference profile's shape: the vectorised core of :mod:`live_profiles`.

Private. A :class:`Plan` is built once per reference profile: numeric bin edges padded into one
matrix, categorical vocabularies as dicts from category to slot. :meth:`Plan.count` turns one batch
of validated columns into a :class:`Counts` of plain numpy arrays (no pandas, a fixed number of numpy
calls per batch whatever the number of numeric features), and :meth:`Counts.add` sums two of them,
so a time bucket's state is a few small arrays whose size depends on the reference only, never on
the traffic. :meth:`Plan.profile` turns counts back into a :class:`~modelward.drift.DatasetProfile`
observed on the reference, identical in its counts to ``reference.observe(frame, ...)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from modelward.drift.profile import (
    CategoricalProfile,
    DatasetProfile,
    NumericProfile,
    PredictionProfile,
)

__all__ = ["Counts", "Plan"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Below this many comparisons a batch is binned by one broadcast comparison against every edge of
# every feature (one numpy call); above it, one searchsorted per feature is cheaper.
_BROADCAST_MAX = 65_536
# Slots of non-string values already keyed, per feature; capped so that odd traffic cannot grow it.
_MEMO_MAX = 1_024


def _key(v: object) -> str | None:
    """A value's category key, as :func:`modelward.drift.profile` keys it; None when missing."""
    if v is None:
        return None
    if isinstance(v, float | np.floating):
        if math.isnan(v):
            return None
        if math.isfinite(v) and float(v).is_integer():
            return str(int(v))
    return str(v)


class _NumericPlan:
    """Bin edges of several numeric profiles, laid out for one vectorised pass over a rows x features
    matrix.

    Each feature's last edge is replaced by the next float above it, so that "edges <= x" counts
    exactly what :class:`~modelward.drift.NumericProfile` bins: ``searchsorted(side="right")`` with
    the last inner bin closed. Shorter edge lists are padded with +inf, which only an infinite value
    reaches (those counts are clipped).
    """

    def __init__(self, profiles: Sequence[NumericProfile]) -> None:
        self.profiles = tuple(profiles)
        edges = []
        for p in profiles:
            e = np.asarray(p.edges * 2 if len(p.edges) == 1 else p.edges, dtype=np.float64)
            if e.size:
                e[-1] = np.nextafter(e[-1], np.inf)
            edges.append(e)
        self.edges = edges
        self.width = np.asarray([e.size for e in edges], dtype=np.int64)
        slots = np.where(self.width > 0, self.width + 1, 1)
        self.offsets = np.concatenate([[0], np.cumsum(slots)]).astype(np.int64)
        self.starts = self.offsets[None, :-1]
        self.size = int(self.offsets[-1])
        self.padded = np.full((len(edges), max(int(self.width.max(initial=0)), 1)), np.inf)
        for j, e in enumerate(edges):
            self.padded[j, : e.size] = e

    def count(self, x: FloatArray) -> tuple[IntArray, FloatArray]:
        """Bin counts of every feature (concatenated), and per feature its moments:
        [missing, nonfinite, total, total_sq, minimum, maximum]."""
        f = x.shape[1]
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.add.reduce(x, axis=0)
            if math.isfinite(np.add.reduce(total)):  # no NaN, no infinity: the common case, few calls
                moments = np.empty((6, f))
                moments[:2] = 0.0
                moments[2] = total
                moments[3] = np.add.reduce(x * x, axis=0)
                moments[4] = np.minimum.reduce(x, axis=0)
                moments[5] = np.maximum.reduce(x, axis=0)
                return np.bincount(self._bins(x, False).ravel(), minlength=self.size), moments
            present, finite = ~np.isnan(x), np.isfinite(x)
            xf = np.where(finite, x, 0.0)
            moments = np.stack(
                [
                    np.count_nonzero(~present, axis=0).astype(np.float64),
                    np.count_nonzero(present & ~finite, axis=0).astype(np.float64),
                    xf.sum(axis=0),
                    np.square(xf).sum(axis=0),
                    np.where(finite, x, np.inf).min(axis=0, initial=np.inf),
                    np.where(finite, x, -np.inf).max(axis=0, initial=-np.inf),
                ]
            )
        return np.bincount(self._bins(x, True)[present], minlength=self.size), moments

    def _bins(self, x: FloatArray, infinite: bool) -> IntArray:
        n, f = x.shape
        if n * f * self.padded.shape[1] <= _BROADCAST_MAX:
            idx: IntArray = np.add.reduce(self.padded[None, :, :] <= x[:, :, None], axis=2, dtype=np.int64)
            if infinite:
                np.minimum(idx, self.width[None, :], out=idx)
        else:
            idx = np.zeros((n, f), dtype=np.int64)
            for j, e in enumerate(self.edges):
                if e.size:
                    idx[:, j] = np.searchsorted(e, x[:, j], side="right")
        idx += self.starts
        return idx

    def profiles_from(self, bins: IntArray, moments: FloatArray) -> list[NumericProfile]:
        out = []
        for j, p in enumerate(self.profiles):
            counts = bins[self.offsets[j] : self.offsets[j + 1]].tolist()
            count, nonfinite = int(sum(counts)), int(moments[1, j])
            bounded = count > nonfinite
            out.append(
                replace(
                    p,
                    count=count,
                    missing=int(moments[0, j]),
                    counts=tuple(counts),
                    minimum=float(moments[4, j]) if bounded else None,
                    maximum=float(moments[5, j]) if bounded else None,
                    total=float(moments[2, j]),
                    total_sq=float(moments[3, j]),
                    nonfinite=nonfinite,
                )
            )
        return out

    def empty_moments(self) -> FloatArray:
        m = np.zeros((6, len(self.profiles)))
        m[4], m[5] = np.inf, -np.inf
        return m


def add_moments(into: FloatArray, other: FloatArray) -> None:
    into[:4] += other[:4]
    np.minimum(into[4], other[4], out=into[4])
    np.maximum(into[5], other[5], out=into[5])


class _CategoricalPlan:
    """Vocabularies of several categorical profiles: per feature its categories, other and missing,
    as slots of one count vector."""

    def __init__(self, profiles: Sequence[CategoricalProfile]) -> None:
        self.profiles = tuple(profiles)
        self.offsets: list[int] = [0]
        self.lookups: list[dict[str, int]] = []
        self.memos: list[dict[tuple[type, object], int]] = [{} for _ in profiles]
        for p in profiles:  # global slots: categories..., other, missing
            base = self.offsets[-1]
            self.lookups.append({k: base + i for i, k in enumerate(p.categories)})
            self.offsets.append(base + len(p.categories) + 2)
        self.size = self.offsets[-1]

    def add_slots(self, j: int, values: np.ndarray, into: list[int], counts: IntArray) -> None:
        """Slots of one column of feature ``j``: appended to ``into`` (one per row) or, for bool and
        numeric columns, added to ``counts`` directly."""
        lookup = self.lookups[j]
        other, missing = self.offsets[j + 1] - 2, self.offsets[j + 1] - 1
        kind = values.dtype.kind
        if kind == "b":
            trues = int(np.count_nonzero(values))
            counts[lookup.get("True", other)] += trues
            counts[lookup.get("False", other)] += values.size - trues
        elif kind in "iuf":
            x = values.astype(np.float64, copy=False)
            nan = np.isnan(x)
            counts[missing] += int(np.count_nonzero(nan))
            distinct, n = np.unique(x[~nan], return_counts=True)
            for v, c in zip(distinct.tolist(), n.tolist(), strict=True):
                counts[lookup.get(_key(v) or "", other)] += c
        else:
            memo = self.memos[j]
            get = lookup.get
            for v in values.tolist():
                if type(v) is str:
                    into.append(get(v, other))
                    continue
                slot = memo.get((type(v), v))  # class values (ints) repeat: key each type and value once
                if slot is None:
                    k = _key(v)
                    slot = missing if k is None else get(k, other)
                    if len(memo) < _MEMO_MAX and k is not None:
                        memo[(type(v), v)] = slot
                into.append(slot)

    def missing_slot(self, j: int) -> int:
        return self.offsets[j + 1] - 1

    def profiles_from(self, counts: IntArray) -> list[CategoricalProfile]:
        out = []
        for j, p in enumerate(self.profiles):
            c = counts[self.offsets[j] : self.offsets[j + 1]].tolist()
            k = len(p.categories)
            out.append(
                replace(
                    p,
                    count=int(sum(c[: k + 1])),
                    missing=int(c[k + 1]),
                    categories=dict(zip(p.categories, c[:k], strict=True)),
                    other=int(c[k]),
                )
            )
        return out


@dataclass(slots=True)
class Counts:
    """Everything a bucket keeps: rows, numeric bins and moments, categorical slots. The model's
    outputs are the last numeric column (scores or regression values) and the last categorical one
    (predicted labels); ``unscored`` and ``unlabelled`` count rows that came without them, which are
    not missing values of the outputs."""

    rows: int
    bins: IntArray
    moments: FloatArray
    categories: IntArray
    unscored: int = 0
    unlabelled: int = 0

    def add(self, other: Counts) -> None:
        self.rows += other.rows
        self.bins += other.bins
        add_moments(self.moments, other.moments)
        self.categories += other.categories
        self.unscored += other.unscored
        self.unlabelled += other.unlabelled

    @property
    def nbytes(self) -> int:
        return self.bins.nbytes + self.moments.nbytes + self.categories.nbytes


class Plan:
    """How to count batches on one reference profile; built once per reference."""

    def __init__(self, reference: DatasetProfile) -> None:
        self.reference = reference
        features = reference.features
        self.numeric_names = [n for n, f in features.items() if isinstance(f, NumericProfile)]
        self.categorical_names = [n for n, f in features.items() if isinstance(f, CategoricalProfile)]
        numeric: list[NumericProfile] = [f for f in features.values() if isinstance(f, NumericProfile)]
        categorical = [f for f in features.values() if isinstance(f, CategoricalProfile)]
        pred = reference.prediction
        self.task = pred.task if pred else None
        self.scored = pred is not None and pred.scores is not None
        self.labelled = pred is not None and pred.labels is not None
        if pred is not None and pred.scores is not None:
            numeric.append(pred.scores)
        if pred is not None and pred.labels is not None:
            categorical.append(pred.labels)
        self.n_classes = len(pred.classes) if pred else 0
        self.numeric = _NumericPlan(numeric)
        self.categorical = _CategoricalPlan(categorical)
        self.n_numeric = len(numeric)

    def empty(self) -> Counts:
        return Counts(
            0,
            np.zeros(self.numeric.size, dtype=np.int64),
            self.numeric.empty_moments(),
            np.zeros(self.categorical.size, dtype=np.int64),
        )

    def count(
        self,
        columns: Mapping[str, np.ndarray],
        labels: np.ndarray | None = None,
        probabilities: np.ndarray | None = None,
        values: np.ndarray | None = None,
    ) -> Counts:
        n = _rows(columns, labels, probabilities, values)
        if self.task == "regression" and values is None:
            values, labels = labels, None
        score: np.ndarray | None = None
        if self.task == "classification" and probabilities is not None:
            score = _scores(np.asarray(probabilities, dtype=np.float64), self.n_classes)
        elif self.task == "regression":
            score = values
        out = Counts(n, np.empty(0, np.int64), np.empty(0), np.zeros(self.categorical.size, dtype=np.int64))
        parts = [columns.get(name) for name in self.numeric_names]
        if self.scored:
            parts.append(score)
            out.unscored = n if score is None else 0
        try:  # one call when every column is a plain numeric array
            x = np.array(parts, dtype=np.float64).T
            if x.shape != (n, self.n_numeric):
                raise ValueError(x.shape)
        except (TypeError, ValueError):
            x = np.empty((n, self.n_numeric))
            for j, col in enumerate(parts):
                x[:, j] = np.nan if col is None else _numeric(col)
        out.bins, out.moments = self.numeric.count(x)
        slots: list[int] = []
        for j, name in enumerate(self.categorical_names):
            col = columns.get(name)
            if col is None:
                out.categories[self.categorical.missing_slot(j)] += n
            else:
                self.categorical.add_slots(j, np.asarray(col), slots, out.categories)
        if self.labelled:
            j = len(self.categorical_names)
            if labels is None:
                out.categories[self.categorical.missing_slot(j)] += n
                out.unlabelled = n
            else:
                self.categorical.add_slots(j, np.asarray(labels), slots, out.categories)
        if slots:
            out.categories += np.bincount(slots, minlength=self.categorical.size)
        return out

    def unseen(self, counts: Counts) -> dict[str, int]:
        """Per categorical feature whose reference holds every value it saw in training, the values
        of ``counts`` outside them (its ``other`` slot); only features with some."""
        found: dict[str, int] = {}
        for j, name in enumerate(self.categorical_names):
            if self.categorical.profiles[j].holds_every_value:
                n = int(counts.categories[self.categorical.offsets[j + 1] - 2])
                if n:
                    found[name] = n
        return found

    def counts_of(self, doc: Mapping[str, Any]) -> Counts | None:
        """Counts of a stored profile document (``DatasetProfile.to_dict()``) observed on this
        reference, read straight into arrays; None when its shape (features, edges, categories,
        outputs) is not the reference's. Much cheaper than ``DatasetProfile.from_dict`` and a merge,
        which check every number of every row of a long window."""
        features = {f["name"]: f for f in doc["features"]}
        if len(features) != len(self.reference.features):
            return None
        prediction = doc.get("prediction")
        if (prediction is None) != (self.reference.prediction is None):
            return None
        numeric: list[Any] = [features.get(name) for name in self.numeric_names]
        categorical: list[Any] = [features.get(name) for name in self.categorical_names]
        if self.scored:
            numeric.append(prediction.get("scores") if prediction else None)
        if self.labelled:
            categorical.append(prediction.get("labels") if prediction else None)
        out = self.empty()
        out.rows = int(doc["n_rows"])
        for j, (num, f) in enumerate(zip(self.numeric.profiles, numeric, strict=True)):
            if f is None or f.get("kind") != "numeric" or f["edges"] != list(num.edges):
                return None
            lo, hi = self.numeric.offsets[j], self.numeric.offsets[j + 1]
            if len(f["counts"]) != hi - lo:
                return None
            out.bins[lo:hi] = f["counts"]
            low, high = f["minimum"], f["maximum"]
            out.moments[:, j] = (
                f["missing"],
                f["nonfinite"],
                float(f["total"]),  # "inf" and "nan" are written as strings
                float(f["total_sq"]),
                math.inf if low is None else low,
                -math.inf if high is None else high,
            )
        for j, (cat, f) in enumerate(zip(self.categorical.profiles, categorical, strict=True)):
            if f is None or f.get("kind") != "categorical" or list(f["categories"]) != list(cat.categories):
                return None
            lo, hi = self.categorical.offsets[j], self.categorical.offsets[j + 1]
            out.categories[lo:hi] = [*f["categories"].values(), f["other"], f["missing"]]
        return out

    def profile(self, counts: Counts) -> DatasetProfile:
        """The counts as a profile observed on the reference (same edges, categories and order)."""
        numeric = self.numeric.profiles_from(counts.bins, counts.moments)
        categorical = self.categorical.profiles_from(counts.categories)
        made: dict[str, Any] = dict(zip(self.numeric_names, numeric, strict=False))
        made.update(zip(self.categorical_names, categorical, strict=False))
        features = {name: made[name] for name in self.reference.features}
        pred = self.reference.prediction
        prediction: PredictionProfile | None = None
        if pred is not None:
            scores = (
                replace(numeric[-1], missing=numeric[-1].missing - counts.unscored) if self.scored else None
            )
            labels = (
                replace(categorical[-1], missing=categorical[-1].missing - counts.unlabelled)
                if self.labelled
                else None
            )
            prediction = replace(pred, labels=labels, scores=scores)
        return DatasetProfile(counts.rows, features, prediction)


def _rows(columns: Mapping[str, np.ndarray], *outputs: np.ndarray | None) -> int:
    arrays = [*columns.values(), *(o for o in outputs if o is not None)]
    if not arrays:
        raise ValueError("a batch needs at least one column or output")
    n = len(arrays[0])
    for a in arrays:
        if len(a) != n:
            lengths = {name: len(col) for name, col in columns.items()}
            raise ValueError(f"columns and outputs of different lengths ({lengths}, outputs {len(a)})")
    return n


def _numeric(col: np.ndarray) -> FloatArray:
    arr = np.asarray(col)
    if arr.ndim != 1:
        raise ValueError(f"a column must be one-dimensional, not of shape {arr.shape}")
    if arr.dtype.kind == "O":  # numbers with None for missing
        return np.asarray([math.nan if v is None else v for v in arr.tolist()], dtype=np.float64)
    return arr.astype(np.float64, copy=False)


def _scores(p: FloatArray, n_classes: int) -> FloatArray:
    """P(positive) for binary models, the top class probability otherwise (as the reference)."""
    if p.ndim == 1:
        return p
    if p.ndim != 2 or (n_classes and p.shape[1] != n_classes):
        raise ValueError(f"probabilities of shape {p.shape} do not fit {n_classes} classes")
    return p[:, 1] if p.shape[1] == 2 else p.max(axis=1)
