from __future__ import annotations

import math

import pytest

from modelward.errors import ConfigError
from modelward.governance.exposure import exposure_audit

CATALOGUE = {"a": "major", "b": "major", "c": "indie", "d": "indie", "e": "indie", "f": "indie"}


def test_exposure_is_position_discounted_and_shared_by_group() -> None:
    report = exposure_audit([["a", "c", "b", "d"], ["b", "a", "e", "f"]], CATALOGUE, k=3)

    w = [1.0, 1 / math.log2(3), 0.5]
    major = w[0] + w[2] + w[0] + w[1]
    indie = w[1] + w[2]
    groups = {g.group: g for g in report.groups}
    assert groups["major"].exposure_share == pytest.approx(major / (major + indie))
    assert groups["indie"].items == 4
    assert groups["indie"].catalogue_share == pytest.approx(4 / 6)
    assert groups["major"].exposure_per_item == pytest.approx(major / 2 / 2)
    assert report.exposure_ratio == pytest.approx((indie / 4) / (major / 2))
    assert report.to_dict()["groups"][0]["group"] == "indie"


def test_equal_attention_per_item_gives_a_ratio_of_one() -> None:
    report = exposure_audit([["a", "c"], ["d", "b"], ["e", "f"]], {i: g for i, g in CATALOGUE.items()}, k=1)
    # a, d, e shown first once each: major 1 over 2 items, indie 2 over 4 items
    assert report.exposure_ratio == pytest.approx(1.0)


def test_a_group_never_shown_has_no_exposure() -> None:
    report = exposure_audit([["a", "b"]], CATALOGUE, k=2)
    assert report.exposure_ratio == 0.0


@pytest.mark.parametrize(
    ("rankings", "k", "match"),
    [([["a"]], 0, "k must be"), ([["zz"]], 2, "not in the catalogue"), ([[]], 2, "nothing was exposed")],
)
def test_bad_arguments_are_config_errors(rankings: list[list[str]], k: int, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        exposure_audit(rankings, CATALOGUE, k=k)
