"""The explainer of a version is built once, on its first explanation, and reused."""

from __future__ import annotations

import threading

import pandas as pd

from modelward.explain import Explainer, ExplainerCache
from modelward.runtime import LoadedModel


def test_each_version_is_built_once_however_often_it_is_explained(
    loaded: dict[str, LoadedModel], churn_frame: pd.DataFrame
) -> None:
    built: list[tuple[str, str]] = []
    cache = ExplainerCache(on_build=lambda name, version: built.append((name, version)))
    hgb, logreg = loaded["hgb"], loaded["logreg"]
    frame = churn_frame[list(hgb.schema.names)].head(2)

    first = cache.get(hgb)
    for _ in range(3):
        assert cache.get(hgb) is first
        cache.get(hgb).explain(frame)
    cache.get(logreg)
    cache.get(logreg)

    assert cache.builds == {("hgb", "1"): 1, ("logreg", "1"): 1}
    assert built == [("hgb", "1"), ("logreg", "1")]


def test_concurrent_first_requests_share_one_build(loaded: dict[str, LoadedModel]) -> None:
    cache = ExplainerCache()
    start = threading.Barrier(4)
    found: list[Explainer] = []

    def ask() -> None:
        start.wait()
        found.append(cache.get(loaded["gboost"]))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert cache.builds[("gboost", "1")] == 1
    assert len({id(e) for e in found}) == 1


def test_the_least_recently_used_explainer_leaves_a_full_cache(loaded: dict[str, LoadedModel]) -> None:
    cache = ExplainerCache(max_versions=1)
    cache.get(loaded["hgb"])
    cache.get(loaded["logreg"])
    cache.get(loaded["hgb"])
    assert len(cache) == 1
    assert cache.builds[("hgb", "1")] == 2
