"""Per-feature profiles: :class:`NumericProfile` and :class:`CategoricalProfile`.

Private: import the public names from ``modelward.drift`` or ``modelward.drift.profile``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import ClassVar, Literal, TypeAlias

import numpy as np

from modelward.drift._profile_base import (
    OTHER,
    ProfileError,
    ProfileMismatch,
    Values,
    histogram,
    json_float,
    n_counts,
    numeric_values,
    read_count,
    read_counts,
    read_counts_by_key,
    read_fields,
    read_float,
    read_floats,
    read_mapping,
    read_opt_finite,
    read_str,
    require,
    tally_values,
)


@dataclass(frozen=True, slots=True)
class NumericProfile:
    """Histogram and moments of a numeric feature.

    Binning: edges ``e_0 < ... < e_{m-1}`` give ``m + 1`` counts::

        counts[0]      x < e_0                    underflow
        counts[i]      e_{i-1} <= x < e_i         for 1 <= i <= m-2
        counts[m-1]    e_{m-2} <= x <= e_{m-1}    the last inner bin is closed
        counts[m]      x > e_{m-1}                overflow

    A reference's first and last edges are its minimum and maximum, so the reference fills only the
    inner bins and anything outside its range shows up in under/overflow. One edge ``c`` (a constant
    column) is the closed inner bin ``[c, c]``: counts are ``[below, equal, above]``. No edges (a
    reference without finite values) means a single count holding every non-missing value.

    Missing values (None, NaN, pd.NA) count in ``missing`` only. Infinities are values: ``count``
    includes them, they land in under/overflow and are counted in ``nonfinite``, but ``minimum``,
    ``maximum``, ``total`` and ``total_sq`` cover the finite values only (bounds are None when there
    are none), so that ``mean`` and ``std`` describe the finite values.
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
        require(ok_edges, what, "edges must be finite and strictly increasing")
        require(len(c) == n_counts(len(e)), what, f"{len(e)} edges need {n_counts(len(e))} counts")
        require(min((*c, self.missing, self.nonfinite)) >= 0, what, "counts must not be negative")
        require(sum(c) == self.count >= self.nonfinite, what, f"counts do not add up to {self.count}")
        no_bounds = (self.minimum is None) == (self.maximum is None) == (self.count == self.nonfinite)
        require(no_bounds, what, "minimum and maximum must be set exactly when finite values exist")

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

    def observe(self, values: Values) -> NumericProfile:
        """Profile of ``values`` on these edges (fresh counts; same name, dtype and edges)."""
        x, missing = numeric_values(values, f"feature '{self.name}'")
        finite = x[np.isfinite(x)]
        with np.errstate(over="ignore", invalid="ignore"):
            total, total_sq = float(finite.sum()), float(np.square(finite).sum())
        return replace(
            self,
            count=int(x.size),
            missing=missing,
            counts=histogram(self.edges, x),
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
            "total": json_float(self.total),
            "total_sq": json_float(self.total_sq),
            "edges": list(self.edges),
            "counts": list(self.counts),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> NumericProfile:
        return cls(
            **read_fields(
                d,
                "numeric profile",
                name=read_str,
                dtype=read_str,
                count=read_count,
                missing=read_count,
                nonfinite=read_count,
                minimum=read_opt_finite,
                maximum=read_opt_finite,
                total=read_float,
                total_sq=read_float,
                edges=read_floats,
                counts=read_counts,
            )
        )


@dataclass(frozen=True, slots=True)
class CategoricalProfile:
    """Counts of a categorical feature's values over a fixed vocabulary.

    ``categories`` maps stringified values to counts. A reference keeps its ``max_categories`` most
    frequent values, in that order (ties broken by value); the rest count in ``other``. Profiles
    observed on a reference keep its keys and their order. Missing values (None, NaN, pd.NA) count in
    ``missing`` only.

    Values are keyed by ``str(value)`` (so ``True`` is ``"True"``, and numbers in an object column
    are keyed by their text), except that integral floats are keyed like ints (``1.0`` is ``"1"``):
    an int column that gains a NaN in live traffic turns float, and must not look like new categories.
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
        require(min((*counts, self.missing, self.other)) >= 0, what, "counts must not be negative")
        require(sum(counts) + self.other == self.count, what, f"counts do not add up to {self.count}")

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

    def observe(self, values: Values) -> CategoricalProfile:
        """Profile of ``values`` on these categories; values outside them count in ``other``."""
        tally, missing = tally_values(values, f"feature '{self.name}'")
        categories = {k: tally.get(k, 0) for k in self.categories}
        count = sum(tally.values())
        other = count - sum(categories.values())
        return replace(self, count=count, missing=missing, categories=categories, other=other)

    def empty(self) -> CategoricalProfile:
        return replace(self, count=0, missing=0, categories=dict.fromkeys(self.categories, 0), other=0)

    @property
    def holds_every_value(self) -> bool:
        """True when the categories are every value this profile counted (nothing in ``other``): as
        a reference, a value outside them was never seen in training."""
        return self.other == 0

    def unseen_in(self, current: CategoricalProfile) -> int | None:
        """Values of ``current`` (observed on this reference) that the reference never had: its
        ``other``; None when the reference kept only its most frequent values (then a value in
        ``other`` may have been seen in training)."""
        return current.other if self.holds_every_value else None

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
        return cls(
            **read_fields(
                d,
                "categorical profile",
                name=read_str,
                dtype=read_str,
                count=read_count,
                missing=read_count,
                categories=read_counts_by_key,
                other=read_count,
            )
        )


FeatureProfile: TypeAlias = NumericProfile | CategoricalProfile


def _check_same(a: FeatureProfile, b: FeatureProfile) -> None:
    if a.name != b.name or a.dtype != b.dtype:
        message = f"cannot merge the profile of '{a.name}' ({a.dtype}) with that of '{b.name}' ({b.dtype})"
        raise ProfileMismatch(message, a.name)


def merge_features(a: FeatureProfile, b: FeatureProfile) -> FeatureProfile:
    if isinstance(a, NumericProfile) and isinstance(b, NumericProfile):
        return a.merge(b)
    if isinstance(a, CategoricalProfile) and isinstance(b, CategoricalProfile):
        return a.merge(b)
    raise ProfileMismatch(f"feature '{a.name}' is {a.kind} in one profile and {b.kind} in the other", a.name)


def feature_from_dict(d: object) -> FeatureProfile:
    doc = read_mapping(d, "feature profile")
    if doc.get("kind") == NumericProfile.kind:
        return NumericProfile.from_dict(doc)
    if doc.get("kind") == CategoricalProfile.kind:
        return CategoricalProfile.from_dict(doc)
    raise ProfileError(f"feature profile: unknown kind {doc.get('kind')!r}")
