"""Reference profiles: compact, mergeable, JSON-serialisable summaries of a model's data.

A reference is built once from the training data (:func:`build_profile`, :func:`profile_predictions`)
and fixes the *shape* of every later profile: numeric bin edges and categorical vocabularies. Live
traffic is profiled with ``reference.observe(...)`` on that shape, so per-minute profiles can be
summed with ``merge`` into windows and compared bin by bin with the reference.

Numeric binning. Edges ``e_0 < ... < e_{m-1}`` give ``m + 1`` counts::

    counts[0]      x < e_0                    underflow
    counts[i]      e_{i-1} <= x < e_i         for 1 <= i <= m-2
    counts[m-1]    e_{m-2} <= x <= e_{m-1}    the last inner bin is closed
    counts[m]      x > e_{m-1}                overflow

The first and last edges are the reference's minimum and maximum, so the reference fills only the
inner bins and anything outside its range shows up in under/overflow. One edge ``c`` (a constant
column) is the closed inner bin ``[c, c]``: counts are ``[below, equal, above]``. No edges (a column
without finite values) means a single count holding every non-missing value.

Edges are the quantiles of the finite reference values for ``bins`` equal-mass bins, duplicates
collapsed. A column with at most ``bins + 1`` distinct values is discrete: every distinct value is an
edge, plus the midpoint below the largest, so each value has an inner bin of its own (otherwise the
closed last bin would lump the two largest values together and a 0/1 flag could not show drift).

Missing values (None, NaN, pd.NA) count in ``missing`` only. Infinities are values: they land in
under/overflow and in ``nonfinite``, but are left out of the edges and of minimum, maximum, total and
total_sq, so ``mean`` and ``std`` describe the finite values. Ints beyond 2**53 are binned as floats.

Categorical values are keyed by ``str(value)``, except that integral floats are keyed like ints
(``1.0`` -> ``"1"``): an int column that gains a NaN in live traffic turns float, and must not look
like a set of new categories.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd

from modelward.errors import ModelwardError

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
    "build_profile",
    "profile_predictions",
]

PROFILE_FORMAT = "modelward.profile/1"
OTHER = "__other__"
SCORE_EDGES: tuple[float, ...] = tuple(np.linspace(0.0, 1.0, 21).tolist())

Task: TypeAlias = Literal["classification", "regression"]
_FloatArray: TypeAlias = npt.NDArray[np.float64]


class ProfileError(ModelwardError, ValueError):
    """Values that cannot be profiled, or a profile document that cannot be read."""


class ProfileMismatch(ProfileError):
    """Two profiles do not share a shape (edges, categories, features) and cannot be combined."""

    def __init__(self, message: str, feature: str | None = None) -> None:
        self.feature = feature
        super().__init__(message)


def _require(ok: bool, what: str, problem: str) -> None:
    if not ok:
        raise ProfileError(f"{what}: {problem}")


# Readers for profile documents: each checks one JSON value and returns it typed.
def _int(v: object, what: str) -> int:
    _require(isinstance(v, int) and not isinstance(v, bool) and v >= 0, what, f"{v!r} is not a count")
    return int(v)  # type: ignore[call-overload]


def _float(v: object, what: str) -> float:
    # Sums of huge values can overflow; they are written as "inf"/"-inf"/"nan" because JSON has no such numbers.
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    _require(isinstance(v, int | float) and not isinstance(v, bool), what, f"{v!r} is not a number")
    return float(v)  # type: ignore[arg-type]


def _finite(v: object, what: str) -> float:
    x = _float(v, what)
    _require(math.isfinite(x), what, f"{x} is not finite")
    return x


def _opt_finite(v: object, what: str) -> float | None:
    return None if v is None else _finite(v, what)


def _str(v: object, what: str) -> str:
    _require(isinstance(v, str), what, f"{v!r} is not a string")
    return str(v)


def _list(v: object, what: str) -> Sequence[object]:
    if not isinstance(v, list | tuple):
        raise ProfileError(f"{what}: {v!r} is not a list")
    return v


def _mapping(v: object, what: str) -> Mapping[str, object]:
    if not isinstance(v, Mapping):
        raise ProfileError(f"{what}: {v!r} is not a JSON object")
    return v


def _floats(v: object, what: str) -> tuple[float, ...]:
    return tuple(_finite(x, what) for x in _list(v, what))


def _ints(v: object, what: str) -> tuple[int, ...]:
    return tuple(_int(x, what) for x in _list(v, what))


def _counts_by_key(v: object, what: str) -> dict[str, int]:
    return {_str(k, what): _int(n, what) for k, n in _mapping(v, what).items()}


def _read(d: object, what: str, **readers: Callable[[object, str], object]) -> dict[str, Any]:
    doc = _mapping(d, what)
    absent = [k for k in readers if k not in doc]
    _require(not absent, what, f"lacks {', '.join(absent)}")
    return {k: read(doc[k], f"{what}: {k}") for k, read in readers.items()}


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def _n_counts(n_edges: int) -> int:
    return 1 if n_edges == 0 else max(n_edges + 1, 3)


def _histogram(edges: tuple[float, ...], x: _FloatArray) -> tuple[int, ...]:
    if not edges:
        return (int(x.size),)
    # A single edge c is the closed bin [c, c]; doubling it lets the general rule produce that.
    e = np.asarray(edges * 2 if len(edges) == 1 else edges, dtype=np.float64)
    idx = np.searchsorted(e, x, side="right")
    idx[x == e[-1]] -= 1
    return tuple(np.bincount(idx, minlength=e.size + 1).tolist())


def _reference_edges(finite: _FloatArray, bins: int) -> tuple[float, ...]:
    if finite.size == 0:
        return ()
    distinct = np.unique(finite)
    if distinct.size > bins + 1:
        return tuple(np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1))).tolist())
    edges: list[float] = distinct.tolist()
    if len(edges) >= 2:
        mid = edges[-2] / 2 + edges[-1] / 2  # halves first: no overflow near the float limit
        if edges[-2] < mid < edges[-1]:
            edges.insert(-1, mid)
    return tuple(edges)


def _is_temporal(dtype: object) -> bool:
    return bool(
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    )


def _series(values: object, what: str) -> pd.Series[Any]:
    if isinstance(values, pd.Series):
        return values
    try:
        return pd.Series(values)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"{what}: expected a one-dimensional sequence of values ({exc})") from None


def _numeric_values(values: object, what: str) -> tuple[_FloatArray, int]:
    """The non-missing values as floats, and the number of missing ones."""
    s = _series(values, what)
    _require(not _is_temporal(s.dtype), what, f"{s.dtype} values are not supported yet")
    try:
        x = s.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"{what}: values are not numeric ({exc})") from None
    present = ~np.isnan(x)
    return x[present], int(x.size - np.count_nonzero(present))


def _key(v: object) -> str:
    if isinstance(v, float | np.floating) and math.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _tally(values: object, what: str) -> tuple[dict[str, int], int]:
    """Counts of the non-missing values by key, and the number of missing ones."""
    s = _series(values, what)
    tally: dict[str, int] = {}
    for value, n in s.value_counts(dropna=True, sort=False).items():
        if n:  # a category dtype also reports its unused categories
            k = _key(value)
            tally[k] = tally.get(k, 0) + int(n)
    return tally, int(s.isna().sum())


def _ranked(tally: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True, slots=True)
class NumericProfile:
    """Histogram and moments of a numeric feature; see the module docstring for the binning rule.

    ``count`` includes the ``nonfinite`` (infinite) values; ``minimum``, ``maximum``, ``total`` and
    ``total_sq`` cover the finite ones, and the bounds are None when there are none.
    """

    kind: ClassVar[Literal["numeric"]] = "numeric"
    name: str
    dtype: str
    count: int
    missing: int
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    minimum: float | None
    maximum: float | None
    total: float
    total_sq: float
    nonfinite: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", tuple(float(e) for e in self.edges))
        object.__setattr__(self, "counts", tuple(int(c) for c in self.counts))
        what, e, c = f"numeric profile '{self.name}'", self.edges, self.counts
        ok_edges = all(map(math.isfinite, e)) and all(a < b for a, b in pairwise(e))
        _require(ok_edges, what, "edges must be finite and strictly increasing")
        _require(len(c) == _n_counts(len(e)), what, f"{len(e)} edges need {_n_counts(len(e))} counts")
        _require(min((*c, self.missing, self.nonfinite)) >= 0, what, "counts must not be negative")
        _require(sum(c) == self.count >= self.nonfinite, what, f"counts do not add up to {self.count}")
        no_bounds = self.minimum is None or self.maximum is None
        _require(no_bounds == (self.count == self.nonfinite), what, "bounds must exist iff finite values do")

    @property
    def n(self) -> int:
        return self.count + self.missing

    @property
    def missing_rate(self) -> float:
        return self.missing / self.n if self.n else 0.0

    @property
    def mean(self) -> float | None:
        finite = self.count - self.nonfinite
        return self.total / finite if finite else None

    @property
    def std(self) -> float | None:
        """Population standard deviation of the finite values."""
        finite = self.count - self.nonfinite
        if not finite:
            return None
        mean = self.total / finite
        # Rounding can push the difference of moments slightly below zero for near-constant data.
        return math.sqrt(max(self.total_sq / finite - mean * mean, 0.0))

    def observe(self, values: npt.ArrayLike) -> NumericProfile:
        """Profile of ``values`` on these edges (fresh counts; same name, dtype and edges)."""
        x, missing = _numeric_values(values, f"feature '{self.name}'")
        finite = x[np.isfinite(x)]
        with np.errstate(over="ignore", invalid="ignore"):
            total, total_sq = float(finite.sum()), float(np.square(finite).sum())
        return replace(
            self,
            count=int(x.size),
            missing=missing,
            counts=_histogram(self.edges, x),
            minimum=float(finite.min()) if finite.size else None,
            maximum=float(finite.max()) if finite.size else None,
            total=total,
            total_sq=total_sq,
            nonfinite=int(x.size - finite.size),
        )

    def empty(self) -> NumericProfile:
        return self.observe(np.empty(0))

    def merge(self, other: NumericProfile) -> NumericProfile:
        _check_same(self, other)
        if self.edges != other.edges:
            raise ProfileMismatch(f"cannot merge profiles of '{self.name}': bin edges differ", self.name)
        lows = [b for b in (self.minimum, other.minimum) if b is not None]
        highs = [b for b in (self.maximum, other.maximum) if b is not None]
        return replace(
            self,
            count=self.count + other.count,
            missing=self.missing + other.missing,
            counts=tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            minimum=min(lows, default=None),
            maximum=max(highs, default=None),
            total=self.total + other.total,
            total_sq=self.total_sq + other.total_sq,
            nonfinite=self.nonfinite + other.nonfinite,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "name": self.name,
            "dtype": self.dtype,
            "count": self.count,
            "missing": self.missing,
            "nonfinite": self.nonfinite,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "total": _json_float(self.total),
            "total_sq": _json_float(self.total_sq),
            "edges": list(self.edges),
            "counts": list(self.counts),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> NumericProfile:
        return cls(
            **_read(
                d,
                "numeric profile",
                name=_str,
                dtype=_str,
                count=_int,
                missing=_int,
                nonfinite=_int,
                minimum=_opt_finite,
                maximum=_opt_finite,
                total=_float,
                total_sq=_float,
                edges=_floats,
                counts=_ints,
            )
        )


@dataclass(frozen=True, slots=True)
class CategoricalProfile:
    """Counts of a categorical feature's values over a fixed vocabulary.

    ``categories`` maps stringified values to counts. A reference keeps its ``max_categories`` most
    frequent values, in that order (ties broken by value); the rest count in ``other``. Profiles
    observed on a reference keep its keys and their order.
    """

    kind: ClassVar[Literal["categorical"]] = "categorical"
    name: str
    dtype: str
    count: int
    missing: int
    categories: dict[str, int]
    other: int

    def __post_init__(self) -> None:
        # A copy, so that the caller's dict cannot change a frozen profile behind its back.
        object.__setattr__(self, "categories", dict(self.categories))
        what, counts = f"categorical profile '{self.name}'", self.categories.values()
        _require(min((*counts, self.missing, self.other)) >= 0, what, "counts must not be negative")
        _require(sum(counts) + self.other == self.count, what, f"counts do not add up to {self.count}")

    @property
    def n(self) -> int:
        return self.count + self.missing

    @property
    def missing_rate(self) -> float:
        return self.missing / self.n if self.n else 0.0

    @property
    def frequencies(self) -> dict[str, float]:
        """Share of the non-missing values per category, plus ``OTHER`` if anything fell outside."""
        if not self.count:
            return dict.fromkeys(self.categories, 0.0)
        shares = {k: v / self.count for k, v in self.categories.items()}
        if self.other:
            shares[OTHER] = shares.get(OTHER, 0.0) + self.other / self.count
        return shares

    def observe(self, values: npt.ArrayLike) -> CategoricalProfile:
        """Profile of ``values`` on these categories; values outside them count in ``other``."""
        tally, missing = _tally(values, f"feature '{self.name}'")
        categories = {k: tally.get(k, 0) for k in self.categories}
        count = sum(tally.values())
        other = count - sum(categories.values())
        return replace(self, count=count, missing=missing, categories=categories, other=other)

    def empty(self) -> CategoricalProfile:
        return replace(self, count=0, missing=0, categories=dict.fromkeys(self.categories, 0), other=0)

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        _check_same(self, other)
        if self.categories.keys() != other.categories.keys():
            raise ProfileMismatch(f"cannot merge profiles of '{self.name}': categories differ", self.name)
        return replace(
            self,
            count=self.count + other.count,
            missing=self.missing + other.missing,
            categories={k: v + other.categories[k] for k, v in self.categories.items()},
            other=self.other + other.other,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "name": self.name,
            "dtype": self.dtype,
            "count": self.count,
            "missing": self.missing,
            "categories": dict(self.categories),
            "other": self.other,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> CategoricalProfile:
        fields = dict(name=_str, dtype=_str, count=_int, missing=_int, categories=_counts_by_key, other=_int)
        return cls(**_read(d, "categorical profile", **fields))


FeatureProfile: TypeAlias = NumericProfile | CategoricalProfile


def _check_same(a: FeatureProfile, b: FeatureProfile) -> None:
    if a.name != b.name or a.dtype != b.dtype:
        message = f"cannot merge the profile of '{a.name}' ({a.dtype}) with that of '{b.name}' ({b.dtype})"
        raise ProfileMismatch(message, a.name)


def _merge_features(a: FeatureProfile, b: FeatureProfile) -> FeatureProfile:
    if isinstance(a, NumericProfile) and isinstance(b, NumericProfile):
        return a.merge(b)
    if isinstance(a, CategoricalProfile) and isinstance(b, CategoricalProfile):
        return a.merge(b)
    raise ProfileMismatch(f"feature '{a.name}' is {a.kind} in one profile and {b.kind} in the other", a.name)


def _feature_from_dict(d: object) -> FeatureProfile:
    doc = _mapping(d, "feature profile")
    if doc.get("kind") == NumericProfile.kind:
        return NumericProfile.from_dict(doc)
    if doc.get("kind") == CategoricalProfile.kind:
        return CategoricalProfile.from_dict(doc)
    raise ProfileError(f"feature profile: unknown kind {doc.get('kind')!r}")
