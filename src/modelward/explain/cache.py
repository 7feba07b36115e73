"""Explainers kept per version: built on a version's first explanation, reused after.

A version's model never changes (its artifacts are pinned), so neither does its explainer. The key is
(name, version); a lock makes concurrent first requests build it once. ``builds`` counts the
explainers built, per key, so that "once per version" can be checked from outside."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelward.explain.explainer import Explainer

if TYPE_CHECKING:
    from modelward.runtime.model import LoadedModel

__all__ = ["ExplainerCache"]


class ExplainerCache:
    """``cache.get(model)``: the version's explainer, built with ``build`` the first time.

    ``on_build(name, version)`` is called after each build (a metric); the ``max_versions`` most
    recently used explainers are kept."""

    def __init__(
        self,
        build: Callable[[LoadedModel], Explainer] = Explainer,
        *,
        max_versions: int = 16,
        on_build: Callable[[str, str], None] | None = None,
    ) -> None:
        self._build = build
        self._max = max_versions
        self._on_build = on_build
        self._explainers: OrderedDict[tuple[str, str], Explainer] = OrderedDict()
        self._lock = threading.Lock()
        self.builds: Counter[tuple[str, str]] = Counter()

    def get(self, model: LoadedModel) -> Explainer:
        key = (model.name, model.version)
        with self._lock:
            found = self._explainers.get(key)
            if found is not None:
                self._explainers.move_to_end(key)
                return found
            # Built under the lock: builds are rare and a second thread must wait for this one,
            # not build its own copy.
            explainer = self._build(model)
            self._explainers[key] = explainer
            self.builds[key] += 1
            while len(self._explainers) > self._max:
                self._explainers.popitem(last=False)
        if self._on_build is not None:
            self._on_build(*key)
        return explainer

    def __len__(self) -> int:
        return len(self._explainers)
