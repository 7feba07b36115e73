"""Which input feature each column of a fitted scikit-learn transformer comes from.

A pipeline's estimator sees transformed columns (``geography`` becomes three one-hot columns);
explanations are reported per input feature, so each transformed column's contribution is added to
the feature it was made from. The map is read from the transformers' public API
(``ColumnTransformer.output_indices_``, ``get_feature_names_out``); when a column cannot be traced to
exactly one input (a PCA mixes all of them), the answer is None and the caller explains the whole
model on its inputs instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["column_sources"]


def column_sources(transformer: Any, inputs: Sequence[str]) -> list[int] | None:
    """For each output column of ``transformer`` (fitted on columns named ``inputs``), the index of
    the input column it comes from; None when some output has no single source."""
    if transformer is None or transformer == "passthrough":
        return list(range(len(inputs)))
    if transformer == "drop":
        return []
    kind = type(transformer).__name__
    if kind == "Pipeline":
        return _chain(transformer, inputs)
    if kind == "ColumnTransformer":
        return _columns(transformer, inputs)
    outputs = _names_out(transformer, inputs)
    if outputs is None:
        return None
    if len(inputs) == 1:
        return [0] * len(outputs)
    return _match(outputs, inputs)


def _names_out(transformer: Any, inputs: Sequence[str]) -> list[str] | None:
    if not hasattr(transformer, "get_feature_names_out"):
        return None
    try:
        try:
            names = transformer.get_feature_names_out(list(inputs))
        except ValueError:  # fitted on a DataFrame whose column names it checks
            names = transformer.get_feature_names_out()
    except (AttributeError, ValueError, TypeError):  # e.g. a FunctionTransformer without names
        return None
    return [str(n) for n in names]


def _match(outputs: Sequence[str], inputs: Sequence[str]) -> list[int] | None:
    """An output named like an input (a scaler) or ``<input>_<value>`` (one-hot) comes from it; the
    longest such input wins, so ``a_b_x`` belongs to ``a_b`` rather than ``a``."""
    index = {name: i for i, name in enumerate(inputs)}
    by_length = sorted(inputs, key=len, reverse=True)
    sources: list[int] = []
    for out in outputs:
        found = index.get(out)
        if found is None:
            found = next((index[n] for n in by_length if out.startswith(n + "_")), None)
        if found is None:
            return None
        sources.append(found)
    return sources


def _chain(pipeline: Any, inputs: Sequence[str]) -> list[int] | None:
    sources = list(range(len(inputs)))
    names = list(inputs)
    for _, step in pipeline.steps:
        step_sources = column_sources(step, names)
        if step_sources is None:
            return None
        sources = [sources[i] for i in step_sources]
        if step is None or step == "passthrough":
            continue
        out = _names_out(step, names)
        if out is None or len(out) != len(step_sources):
            return None
        names = out
    return sources


def _columns(ct: Any, inputs: Sequence[str]) -> list[int] | None:
    slices: dict[str, slice] = getattr(ct, "output_indices_", {})
    width = max((s.stop for s in slices.values()), default=0)
    sources: list[int | None] = [None] * width
    for name, transformer, columns in ct.transformers_:
        out = slices.get(name)
        if out is None or out.stop <= out.start or transformer == "drop":
            continue
        picked = _input_indices(columns, inputs)
        if picked is None:
            return None
        inner = column_sources(transformer, [inputs[i] for i in picked])
        if inner is None or len(inner) != out.stop - out.start:
            return None
        sources[out] = [picked[i] for i in inner]
    if any(s is None for s in sources):
        return None
    return [int(s) for s in sources if s is not None]


def _input_indices(columns: Any, inputs: Sequence[str]) -> list[int] | None:
    if callable(columns):
        return None
    if isinstance(columns, str | int):
        columns = [columns]
    if isinstance(columns, slice):
        return list(range(len(inputs)))[columns]
    values = list(np.asarray(columns).tolist()) if not isinstance(columns, list) else columns
    if values and all(isinstance(v, bool) for v in values):
        return [i for i, keep in enumerate(values) if keep]
    index = {name: i for i, name in enumerate(inputs)}
    picked: list[int] = []
    for v in values:
        if isinstance(v, str):
            if v not in index:
                return None
            picked.append(index[v])
        elif isinstance(v, int):
            picked.append(v)
        else:
            return None
    return picked
