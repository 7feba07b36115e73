"""SHAP explanations of a registered version's predictions (the ``[explain]`` extra).

:class:`Explainer` picks SHAP's tree, linear or permutation explainer for a loaded version and reports
each row's contributions per input feature, the base value and the model's output in the output
space it states; :class:`ExplainerCache` builds one per version; :func:`explain` is the one-call API;
:func:`global_importance` the mean |SHAP| that the model card shows.
"""

from __future__ import annotations

from modelward.explain.api import explain, explainer_for
from modelward.explain.cache import ExplainerCache
from modelward.explain.explainer import TOLERANCE, Explainer
from modelward.explain.explanation import Explanation, OutputSpace, RowExplanation
from modelward.explain.importance import IMPORTANCE_KIND, global_importance, save_importance

__all__ = [
    "IMPORTANCE_KIND",
    "TOLERANCE",
    "Explainer",
    "ExplainerCache",
    "Explanation",
    "OutputSpace",
    "RowExplanation",
    "explain",
    "explainer_for",
    "global_importance",
    "save_importance",
]
