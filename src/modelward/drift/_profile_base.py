"""Errors, document readers and the numeric/categorical primitives behind :mod:`modelward.drift.profile`.

Private: import the public names from ``modelward.drift`` or ``modelward.drift.profile``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from modelward.errors import ProfileError as ProfileError  # importable here as before
from modelward.errors import ProfileMismatch as ProfileMismatch

OTHER = "__other__"

FloatArray: TypeAlias = npt.NDArray[np.float64]
# What observe() takes: arrays, Series, or plain lists (which may hold None).
Values: TypeAlias = "npt.ArrayLike | pd.Series[Any] | Sequence[object]"


def require(ok: bool, what: str, problem: str) -> None:
    if not ok:
        raise ProfileError(f"{what}: {problem}")


# Readers for profile documents: each checks one JSON value and returns it typed.
def read_count(v: object, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ProfileError(f"{what}: {v!r} is not a count")
    return v


def read_float(v: object, what: str) -> float:
    # Sums of huge values can overflow, and JSON has no inf or nan: such sums are written as strings.
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ProfileError(f"{what}: {v!r} is not a number")
    return float(v)


def read_finite(v: object, what: str) -> float:
    x = read_float(v, what)
    require(math.isfinite(x), what, f"{x} is not finite")
    return x


def read_opt_finite(v: object, what: str) -> float | None:
    return None if v is None else read_finite(v, what)


def read_str(v: object, what: str) -> str:
    if not isinstance(v, str):
        raise ProfileError(f"{what}: {v!r} is not a string")
    return v


def read_list(v: object, what: str) -> Sequence[object]:
    if not isinstance(v, list | tuple):
        raise ProfileError(f"{what}: {v!r} is not a list")
    return v


def read_mapping(v: object, what: str) -> Mapping[str, object]:
    if not isinstance(v, Mapping):
        raise ProfileError(f"{what}: {v!r} is not a JSON object")
    return v


def read_opt_mapping(v: object, what: str) -> Mapping[str, object] | None:
    return None if v is None else read_mapping(v, what)


def read_floats(v: object, what: str) -> tuple[float, ...]:
    return tuple(read_finite(x, what) for x in read_list(v, what))


def read_counts(v: object, what: str) -> tuple[int, ...]:
    return tuple(read_count(x, what) for x in read_list(v, what))


def read_counts_by_key(v: object, what: str) -> dict[str, int]:
    return {read_str(k, what): read_count(n, what) for k, n in read_mapping(v, what).items()}


def read_fields(d: object, what: str, **readers: Callable[[object, str], object]) -> dict[str, Any]:
    doc = read_mapping(d, what)
    absent = [k for k in readers if k not in doc]
    require(not absent, what, f"lacks {', '.join(absent)}")
    return {k: read(doc[k], f"{what}: {k}") for k, read in readers.items()}


def json_float(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def n_counts(n_edges: int) -> int:
    return 1 if n_edges == 0 else max(n_edges + 1, 3)


def histogram(edges: tuple[float, ...], x: FloatArray) -> tuple[int, ...]:
    if not edges:
        return (int(x.size),)
    # A single edge c is the closed bin [c, c]; doubling it lets the general rule produce that.
    e = np.asarray(edges * 2 if len(edges) == 1 else edges, dtype=np.float64)
    idx = np.searchsorted(e, x, side="right")
    idx[x == e[-1]] -= 1
    return tuple(np.bincount(idx, minlength=e.size + 1).tolist())


def reference_edges(finite: FloatArray, bins: int) -> tuple[float, ...]:
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


def sorted_histogram(edges: tuple[float, ...], x: FloatArray) -> tuple[int, ...]:
    """:func:`histogram` of a sorted, NaN-free sample, from a few binary searches of the edges."""
    if not edges:
        return (int(x.size),)
    e = np.asarray(edges * 2 if len(edges) == 1 else edges, dtype=np.float64)  # as histogram() does
    # Bin boundaries: #x < e_i for every edge but the last, #x <= e_last (the last inner bin is closed).
    below = np.searchsorted(x, e[:-1], side="left")
    upto = np.searchsorted(x, e[-1:], side="right")
    return tuple(np.diff(np.concatenate([[0], below, upto, [x.size]])).tolist())


def sorted_quantiles(x: FloatArray, q: FloatArray) -> FloatArray:
    """``np.quantile(x, q)`` (its default "linear" method) of a sorted, NaN-free, non-empty sample.

    Read off the sorted values instead of copying and partitioning them again, with NumPy's own
    arithmetic step for step (its virtual index ``(n - 1) * q``, the neighbours, and its two-sided
    linear interpolation), so that the floats are the same: ``tests/drift/test_sorted_binning.py``
    holds the two bit for bit.
    """
    virtual = (x.size - 1) * q
    previous = np.floor(virtual)
    following = previous + 1
    beyond = virtual >= x.size - 1  # the last value itself: NumPy takes it from both sides
    previous[beyond] = -1
    following[beyond] = -1
    below, above = previous.astype(np.intp), following.astype(np.intp)
    gamma = np.asarray(virtual - below, dtype=np.float64)
    lo, hi = x[below], x[above]
    step = hi - lo
    out: FloatArray = lo + step * gamma
    np.subtract(hi, step * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def sorted_reference_edges(finite: FloatArray, bins: int) -> tuple[float, ...]:
    """:func:`reference_edges` of sorted finite values, without sorting them again."""
    if finite.size == 0:
        return ()
    first = np.empty(finite.size, dtype=np.bool_)
    first[0] = True
    np.not_equal(finite[1:], finite[:-1], out=first[1:])
    if np.count_nonzero(first) > bins + 1:
        return tuple(np.unique(sorted_quantiles(finite, np.linspace(0.0, 1.0, bins + 1))).tolist())
    edges: list[float] = finite[first].tolist()
    if len(edges) >= 2:
        mid = edges[-2] / 2 + edges[-1] / 2  # halves first: no overflow near the float limit
        if edges[-2] < mid < edges[-1]:
            edges.insert(-1, mid)
    return tuple(edges)


def is_temporal(s: pd.Series[Any]) -> bool:
    return bool(
        pd.api.types.is_datetime64_any_dtype(s.dtype)
        or pd.api.types.is_timedelta64_dtype(s.dtype)
        or isinstance(s.dtype, pd.PeriodDtype)
    )


def as_series(values: object, what: str) -> pd.Series[Any]:
    if isinstance(values, pd.Series):
        return values
    try:
        return pd.Series(values)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"{what}: expected a one-dimensional sequence of values ({exc})") from None


def numeric_values(values: object, what: str) -> tuple[FloatArray, int]:
    """The non-missing values as floats, and the number of missing ones."""
    s = as_series(values, what)
    require(not is_temporal(s), what, f"{s.dtype} values are not supported yet")
    try:
        x = s.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"{what}: values are not numeric ({exc})") from None
    present = ~np.isnan(x)
    return x[present], int(x.size - np.count_nonzero(present))


def category_key(v: object) -> str:
    if isinstance(v, float | np.floating) and math.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(v)


def tally_values(values: object, what: str) -> tuple[dict[str, int], int]:
    """Counts of the non-missing values by key, and the number of missing ones."""
    s = as_series(values, what)
    tally: dict[str, int] = {}
    for value, n in s.value_counts(dropna=True, sort=False).items():
        if n:  # a category dtype also reports its unused categories
            k = category_key(value)
            tally[k] = tally.get(k, 0) + int(n)
    return tally, int(s.isna().sum())


def ranked(tally: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))
