"""Exposure fairness of rankings: how a recommender's attention falls across groups of items.

A ranked list gives its item at position ``r`` (1-based) the weight ``1 / log2(r + 1)`` (the
discount of DCG: a user looks at the top more than at the bottom); positions past ``k`` get none.
Per group of items (a provider, a region, ...) the report says how many catalogue items it holds,
its share of the catalogue, its share of all the exposure handed out, and the exposure per item.
The group totals are Fairlearn ``MetricFrame`` sums by group (the library the fairness audit uses).
``exposure_ratio`` is the lowest group's exposure per item over the highest's: 1.0 when every
group's items get the same attention on average, near 0 when one group's items are never shown.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from modelward.errors import ConfigError

__all__ = ["ExposureReport", "GroupExposure", "exposure_audit"]


@dataclass(frozen=True, slots=True)
class GroupExposure:
    group: str
    items: int
    catalogue_share: float
    exposure_share: float
    exposure_per_item: float


@dataclass(frozen=True, slots=True)
class ExposureReport:
    k: int
    rankings: int
    groups: tuple[GroupExposure, ...]
    exposure_ratio: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "rankings": self.rankings,
            "exposure_ratio": self.exposure_ratio,
            "groups": [asdict(g) for g in self.groups],
        }


def exposure_audit(
    rankings: Sequence[Sequence[Hashable]], item_groups: Mapping[Hashable, str], *, k: int = 10
) -> ExposureReport:
    """Exposure per group over ``rankings`` (each best first) cut at ``k``; ``item_groups`` maps every
    catalogue item to its group (an item ranked but absent from it is a :class:`ConfigError`)."""
    import numpy as np
    from fairlearn.metrics import MetricFrame

    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if not item_groups:
        raise ConfigError("the catalogue (item -> group) is empty")
    shown: list[str] = []
    weights: list[float] = []
    for ranking in rankings:
        for position, item in enumerate(ranking[:k], start=1):
            group = item_groups.get(item)
            if group is None:
                raise ConfigError(f"item {item!r} is ranked but not in the catalogue")
            shown.append(str(group))
            weights.append(1.0 / math.log2(position + 1))
    if not weights:
        raise ConfigError("no ranking holds an item: nothing was exposed")
    catalogue: dict[str, int] = {}
    for group in item_groups.values():
        catalogue[str(group)] = catalogue.get(str(group), 0) + 1
    exposure = np.asarray(weights)
    frame = MetricFrame(
        metrics=lambda _truth, pred: float(np.sum(pred)),
        y_true=exposure,
        y_pred=exposure,
        sensitive_features=np.asarray(shown),
    )
    by_group = {str(g): float(v) for g, v in frame.by_group.items()}
    total = float(exposure.sum())
    groups = tuple(
        GroupExposure(
            group=group,
            items=n,
            catalogue_share=n / len(item_groups),
            exposure_share=by_group.get(group, 0.0) / total,
            exposure_per_item=by_group.get(group, 0.0) / n / len(rankings),
        )
        for group, n in sorted(catalogue.items())
    )
    per_item = [g.exposure_per_item for g in groups]
    return ExposureReport(k, len(rankings), groups, min(per_item) / max(per_item))
