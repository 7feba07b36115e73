"""Global importance: the mean absolute SHAP value of each input feature over a sample of rows,
kept with the version as the ``importance`` report (the model card renders it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from modelward.explain.explainer import Explainer
    from modelward.governance.reports import StoredReport
    from modelward.store import Store

__all__ = ["IMPORTANCE_KIND", "global_importance", "save_importance"]

IMPORTANCE_KIND = "importance"


def global_importance(
    explainer: Explainer, frame: pd.DataFrame, *, rows: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """``{"method": "mean_abs_shap", "features": {feature: mean |SHAP|}, "rows": n, ...}`` over
    ``frame`` (a random sample of ``rows`` of it when given), features in decreasing importance."""
    if rows is not None and len(frame) > rows:
        frame = frame.sample(n=rows, random_state=seed)
    if len(frame) == 0:
        from modelward.errors import ModelwardError

        raise ModelwardError("no rows to compute the importance on")
    explanation = explainer.explain(frame)
    features = explainer.features
    phi = np.asarray([[row.contributions[f] for f in features] for row in explanation.rows])
    means = np.abs(phi).mean(axis=0)
    ranked = sorted(zip(features, means.tolist(), strict=True), key=lambda kv: (-kv[1], kv[0]))
    return {
        "method": "mean_abs_shap",
        "features": dict(ranked),
        "rows": len(frame),
        "explainer": explanation.method,
        "output_space": explanation.output_space,
    }


def save_importance(
    store: Store, model: str, version: str, body: dict[str, Any], *, actor: str
) -> StoredReport:
    from modelward.governance.reports import VersionReports

    return VersionReports(store).save(model, version, IMPORTANCE_KIND, body, actor=actor)
