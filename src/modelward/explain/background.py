"""A background sample for explainers that need one, drawn from what the registry keeps per version.

The registry keeps a binned reference profile of the training data and MLflow's input example (five
rows), not the training rows themselves. The sample is drawn from the profile: each numeric feature
picks a bin in proportion to its count and a value uniformly inside it (rounded for integer
columns), each categorical feature a category in proportion to its count. Features are drawn
independently, which is what SHAP's independent masker assumes anyway. Features the profile does not
bin (lists, objects) and models without a profile take the input example's rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from modelward.drift.profile import DatasetProfile
    from modelward.schema import FeatureSchema

__all__ = ["background_sample"]


def background_sample(
    schema: FeatureSchema,
    profile: DatasetProfile,
    example: dict[str, Any] | None,
    *,
    rows: int,
    seed: int = 0,
) -> pd.DataFrame:
    """``rows`` rows in the schema's columns and types (the example's rows when nothing is binned)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    sample = pd.DataFrame(example["data"], columns=example["columns"]) if example is not None else None
    names = list(schema.names) or list(profile.features)
    data: dict[str, Any] = {}
    for name in names:
        feature = profile.features.get(name)
        drawn = _draw(feature, schema, name, rows, rng) if feature is not None else None
        if drawn is None:
            if sample is None or name not in sample.columns or sample.empty:
                continue
            picks = rng.integers(0, len(sample), size=rows)
            drawn = sample[name].iloc[picks].reset_index(drop=True)
        data[name] = drawn
    missing = [n for n in names if n not in data]
    if missing:
        from modelward.errors import ModelwardError

        raise ModelwardError(
            f"no reference values for {', '.join(missing)}: the version has neither a profile of "
            "them nor an input example, so there is no background sample to explain against"
        )
    return pd.DataFrame(data)


def _draw(feature: Any, schema: FeatureSchema, name: str, rows: int, rng: np.random.Generator) -> Any:
    kind = schema[name].type if name in schema.names else None
    if feature.kind == "numeric":
        edges = np.asarray(feature.edges, dtype=np.float64)
        counts = np.asarray(feature.counts, dtype=np.float64)
        if len(edges) == 0 or counts.sum() == 0:
            return None
        if len(edges) == 1:
            values = np.full(rows, edges[0])
        else:
            inner = counts[1 : len(edges)]  # bins between consecutive edges
            if inner.sum() == 0:
                return None
            bins = rng.choice(len(inner), size=rows, p=inner / inner.sum())
            values = rng.uniform(edges[bins], edges[bins + 1])
        if kind in ("long", "integer") or str(feature.dtype).startswith(("int", "uint")):
            return np.rint(values).astype(np.int64)
        if kind == "boolean" or str(feature.dtype) == "bool":
            return values >= 0.5
        return values
    categories = list(feature.categories)
    weights = np.asarray([feature.categories[c] for c in categories], dtype=np.float64)
    if not categories or weights.sum() == 0:
        return None
    picked = rng.choice(len(categories), size=rows, p=weights / weights.sum())
    typed = [_typed(categories[i], kind) for i in picked]
    return (
        np.asarray(typed, dtype=object)
        if kind not in ("long", "integer", "double", "float")
        else np.asarray(typed)
    )


def _typed(key: str, kind: str | None) -> Any:
    if kind in ("long", "integer"):
        return int(float(key))
    if kind in ("double", "float"):
        return float(key)
    if kind == "boolean":
        return key == "True"
    return key
