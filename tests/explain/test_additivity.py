"""Base value plus contributions equal the model's own output for the row, to 1e-6, in the output space
the explanation states; contributions are per input feature (a pipeline's one-hot columns folded back)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelward.explain import TOLERANCE, Explainer
from modelward.runtime import LoadedModel


def _margin(model: Any, x: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.decision_function(x))


def _positive(model: Any, x: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(x))[:, 1]


# name -> (explainer chosen, output space, the model's own output in that space, computed here)
CASES: dict[str, tuple[str, str, Callable[[Any, pd.DataFrame], np.ndarray]]] = {
    "hgb": ("tree", "log_odds", _margin),
    "gboost": ("tree", "log_odds", _margin),
    "forest": ("tree", "probability", _positive),
    "xgb": ("tree", "log_odds", lambda m, x: np.asarray(m.predict(x, output_margin=True))),
    "lgbm": ("tree", "log_odds", lambda m, x: np.asarray(m.predict(x, raw_score=True))),
    "gbreg": ("tree", "value", lambda m, x: np.asarray(m.predict(x))),
    "logreg": ("linear", "log_odds", _margin),
    "knn": ("permutation", "probability", _positive),
    "mixed": ("permutation", "probability", _positive),  # a PCA between the one-hot columns and the model
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_contributions_plus_base_value_equal_the_models_output(
    name: str, loaded: dict[str, LoadedModel], churn_frame: pd.DataFrame
) -> None:
    method, space, own_output = CASES[name]
    model = loaded[name]
    explainer = Explainer(model)
    rows = 3 if method == "permutation" else 25
    frame = churn_frame[list(model.schema.names)].iloc[100 : 100 + rows].reset_index(drop=True)

    explanation = explainer.explain(frame)

    assert (explanation.method, explanation.output_space) == (method, space)
    expected = own_output(model.native, frame)
    assert len(explanation.rows) == rows
    for row, want in zip(explanation.rows, expected, strict=True):
        assert list(row.contributions) == list(model.schema.names)  # input features, one-hot folded
        assert row.output == pytest.approx(float(want), abs=TOLERANCE)
        assert row.base_value + sum(row.contributions.values()) == pytest.approx(row.output, abs=TOLERANCE)


def test_a_pipelines_one_hot_columns_are_reported_as_their_source_feature(
    loaded: dict[str, LoadedModel], churn_frame: pd.DataFrame
) -> None:
    model = loaded["hgb"]
    frame = churn_frame[list(model.schema.names)].head(5)
    transformed = model.native[:-1].get_feature_names_out()
    assert any(n.startswith("cat__geography_") for n in transformed)  # the estimator sees one-hot columns

    row = Explainer(model).explain(frame).rows[0]

    assert "geography" in row.contributions and "gender" in row.contributions
    assert not any(n.startswith(("cat__", "num__")) for n in row.contributions)


def test_binary_classifiers_explain_the_positive_class(
    loaded: dict[str, LoadedModel], churn_frame: pd.DataFrame
) -> None:
    model = loaded["logreg"]
    row = Explainer(model).explain(churn_frame[list(model.schema.names)].head(1)).rows[0]
    assert row.label == model.class_values[1]


def test_top_k_ranks_contributions_by_magnitude(
    loaded: dict[str, LoadedModel], churn_frame: pd.DataFrame
) -> None:
    model = loaded["gboost"]
    row = Explainer(model).explain(churn_frame[list(model.schema.names)].head(1)).rows[0]
    top = row.top(3)
    magnitudes = sorted((abs(v) for v in row.contributions.values()), reverse=True)
    assert [abs(t["contribution"]) for t in top] == magnitudes[:3]


def test_a_multi_class_model_explains_each_rows_predicted_class(
    loaded: dict[str, LoadedModel], churn_frame: pd.DataFrame
) -> None:
    model = loaded["multi"]
    frame = churn_frame[list(model.schema.names)].head(30)
    explanation = Explainer(model).explain(frame)

    predicted = model.native.predict(frame)
    margins = model.native.decision_function(frame)
    classes = list(model.native.classes_)
    assert explanation.output_space == "log_odds"
    for i, row in enumerate(explanation.rows):
        assert row.label == predicted[i]
        assert row.output == pytest.approx(margins[i, classes.index(predicted[i])], abs=TOLERANCE)
        assert row.base_value + sum(row.contributions.values()) == pytest.approx(row.output, abs=TOLERANCE)
