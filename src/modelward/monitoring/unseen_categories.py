"""``modelward_unseen_category_total{model,version,feature}``: categorical values served that the
version's training data never had (``geography="Mars"`` for a model trained on three countries).

The live profiler finds them as it counts each burst of served rows on the reference profile, in
the post-processing thread (:class:`~modelward.monitoring.live_profiles.LiveProfiler`'s
``on_unseen``), so nothing is counted on the request path. The label is the feature's name, never
the value: the series are bounded by the models' categorical features. In multiprocess mode the
counter is summed over workers, as every counter of :mod:`modelward.monitoring.metrics` is.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter

__all__ = ["UnseenCategories"]


class UnseenCategories:
    """Call it with ``(model, version, {feature: values unseen in training})``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counter = Counter(
            "modelward_unseen_category_total",
            "Categorical values served that the version's training data never had, per feature.",
            ["model", "version", "feature"],
            registry=registry,
        )
        self._children: dict[tuple[str, str, str], Counter] = {}

    def __call__(self, model: str, version: str, counts: Mapping[str, int]) -> None:
        for feature, n in counts.items():
            key = (model, version, feature)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self._counter.labels(*key)
            child.inc(n)
