"""How registration decides a model's task when it is not declared."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelward.registry.task import decide_task


class _Plain:
    """A model with predict only (no predict_proba, no classes_)."""


def test_a_model_answering_a_list_per_row_is_not_taken_for_a_classifier() -> None:
    scores = np.empty(3, dtype=object)
    scores[:] = [[0.1, 0.9], [0.5], [0.3, 0.2, 0.7]]
    decision = decide_task(_Plain(), scores, None)
    assert (decision.task, decision.classes, decision.source) == ("regression", (), "outputs")


def test_string_answers_make_a_classifier_with_their_values_as_classes() -> None:
    decision = decide_task(_Plain(), np.array(["no", "yes", "no"]), None)
    assert (decision.task, decision.classes, decision.source) == (
        "classification",
        ("no", "yes"),
        "signature",
    )


def test_answers_that_are_all_values_of_a_discrete_target_make_a_classifier() -> None:
    labels = pd.Series([0, 1, 1, 0])
    decision = decide_task(_Plain(), np.array([1, 0, 0, 1]), labels)
    assert (decision.task, decision.classes, decision.source) == ("classification", ("0", "1"), "target")
    assert decide_task(_Plain(), np.array([0.2, 0.7, 0.1, 0.9]), labels).task == "regression"
