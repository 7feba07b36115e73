"""The one-call Python API: ``explain("churn@champion", {"age": 42, ...})``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelward.explain.explainer import Explainer
from modelward.explain.explanation import Explanation

if TYPE_CHECKING:
    import pandas as pd

    from modelward.config import Settings
    from modelward.schema import FeatureSchema

__all__ = ["explain", "explainer_for", "rows_frame"]


def explainer_for(ref: str, *, settings: Settings | None = None) -> Explainer:
    """The explainer of ``name``, ``name@alias`` or ``name:version`` (loaded and verified)."""
    from modelward.config import Settings
    from modelward.registry import Registry
    from modelward.runtime import load_version

    registry = Registry.from_settings(settings or Settings()).open()
    try:
        model = load_version(registry, registry.resolve(ref))
    finally:
        registry.close()
    return Explainer(model)


def rows_frame(rows: object, schema: FeatureSchema, *, max_rows: int = 1_000_000) -> pd.DataFrame:
    """Rows as the predict route takes them, validated against ``schema``: a request body (any of
    its forms), or simply one record or a list of records. Raises RequestInvalid naming each bad
    field and row."""
    from modelward.validation import validate_request
    from modelward.validation._forms import DATA_MEMBERS

    if isinstance(rows, Mapping) and not any(m in rows for m in DATA_MEMBERS):
        payload: object = {"features": dict(rows)}
    elif isinstance(rows, Sequence) and not isinstance(rows, str | bytes):
        payload = {"instances": list(rows)}
    else:
        payload = rows
    return validate_request(payload, schema, max_rows=max_rows).to_frame()


def explain(
    ref: str,
    rows: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    settings: Settings | None = None,
) -> Explanation:
    """Explain one record, a list of records or a DataFrame with the version ``ref`` names."""
    import pandas as pd

    explainer = explainer_for(ref, settings=settings)
    frame = rows if isinstance(rows, pd.DataFrame) else rows_frame(rows, explainer.model.schema)
    return explainer.explain(frame)
