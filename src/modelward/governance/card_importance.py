"""Global feature importance for a model card, from the best source at hand.

1. permutation importance on a labelled holdout (scikit-learn's ``permutation_importance``), when
   one is given: the drop of the score when a feature's values are shuffled, on the raw features;
2. a stored ``importance`` report (mean |SHAP| per input feature on a sample, written by
   ``modelward explain --global``): measured on the model's inputs, so it comes before
3. the model's own importances (``feature_importances_`` of trees and boosting, ``|coef_|`` of linear
   models; for a pipeline, its last step over the features its earlier steps produce).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from modelward.governance.card_sections import Made, SectionInputs

__all__ = ["importance_section", "model_importance", "permutation_ranking"]

_TOP = 20
_REPEATS = 5


def _ranked(names: list[str], values: np.ndarray, std: np.ndarray | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"feature": n, "importance": float(v), **({"std": float(std[i])} if std is not None else {})}
        for i, (n, v) in enumerate(zip(names, values, strict=True))
        if np.isfinite(v)
    ]
    rows.sort(key=lambda r: -abs(float(r["importance"])))
    return rows[:_TOP]


def _scoring(task: str | None, classes: list[Any], native: Any) -> str:
    if task == "regression":
        return "neg_root_mean_squared_error"
    if len(classes) == 2 and hasattr(native, "predict_proba"):
        return "roc_auc"
    return "accuracy"


def permutation_ranking(inputs: SectionInputs, data: pd.DataFrame, label: str) -> dict[str, Any]:
    from sklearn.inspection import permutation_importance

    native, record = inputs.native, inputs.record or {}
    if native is None or not hasattr(native, "predict"):
        raise ConfigError("permutation importance needs a model that loads with a predict method")
    if label not in data.columns:
        raise ConfigError(f"label column '{label}' is not in the holdout data")
    features = [str(f) for f in record.get("features") or [c for c in data.columns if c != label]]
    missing = [f for f in features if f not in data.columns]
    if missing:
        raise ConfigError(f"the holdout data lacks the model's feature(s): {', '.join(missing)}")
    scoring = _scoring(inputs.info.task, list(record.get("classes") or []), native)
    result = permutation_importance(
        native, data[features], data[label], scoring=scoring, n_repeats=_REPEATS, random_state=0
    )
    return {
        "method": "permutation",
        "source": f"permutation importance on a holdout of {len(data):,} rows ({_REPEATS} repeats)",
        "metric": scoring,
        "rows": len(data),
        "features": _ranked(features, result.importances_mean, result.importances_std),
    }


def model_importance(native: Any) -> dict[str, Any] | None:
    """The model's own importances, or None when it has none."""
    final, names = native, None
    steps = getattr(native, "steps", None)
    if steps:
        final = steps[-1][1]
        head = native[:-1]
        try:
            names = [str(n) for n in head.get_feature_names_out()]
        except (AttributeError, ValueError, TypeError):  # a step that cannot name its outputs
            names = None
    if names is None:
        found = getattr(final, "feature_names_in_", None)
        names = [str(n) for n in found] if found is not None else None
    values: np.ndarray | None = None
    kind = ""
    if getattr(final, "feature_importances_", None) is not None:
        values, kind = np.asarray(final.feature_importances_, dtype=float), "feature_importances_"
    elif getattr(final, "coef_", None) is not None:
        coef = np.atleast_2d(np.asarray(final.coef_, dtype=float))
        values, kind = np.abs(coef).mean(axis=0), "|coef_|"
    if values is None or values.ndim != 1:
        return None
    if names is None or len(names) != len(values):
        names = [f"feature {i}" for i in range(len(values))]
    return {
        "method": "model",
        "source": f"the model's own {kind} ({type(final).__name__}), over the features it is fitted on",
        "metric": kind,
        "features": _ranked(names, values),
    }


def _stored_importance(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows from a stored report: ``features`` as a list of objects or a mapping, or ``importance``."""
    raw = body.get("features", body.get("importance", body.get("mean_abs_shap")))
    pairs: list[tuple[str, float]] = []
    if isinstance(raw, dict):
        pairs = [(str(k), v) for k, v in raw.items() if isinstance(v, int | float)]
    elif isinstance(raw, list):
        for item in raw:
            if not isinstance(item, dict):
                continue
            value = next(
                (
                    item[k]
                    for k in ("importance", "mean_abs_shap", "value")
                    if isinstance(item.get(k), int | float)
                ),
                None,
            )
            if value is not None:
                pairs.append((str(item.get("feature", item.get("name", "?"))), float(value)))
    if not pairs:
        return []
    names, values = [p[0] for p in pairs], np.asarray([p[1] for p in pairs], dtype=float)
    return _ranked(names, values)


def importance_section(inputs: SectionInputs, data: pd.DataFrame | None, label: str | None) -> Made:
    if data is not None and label is not None:
        return permutation_ranking(inputs, data, label), None
    info = inputs.info
    stored = inputs.reports.latest(info.name, info.version, "importance")
    if stored is not None and (rows := _stored_importance(stored.body)):
        method = str(stored.body.get("method") or "shap")
        return {
            "method": method,
            "source": f"stored {method} report",
            "metric": "mean |SHAP|",
            "features": rows,
        }, None
    if inputs.native is not None and (own := model_importance(inputs.native)) is not None:
        return own, None
    return None, (
        "no importance: the model has no importances of its own and none was stored; "
        "give a labelled holdout (`--data FILE --label COLUMN`) for permutation importance"
    )
