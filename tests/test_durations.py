"""The one reader of durations: every unit, the refusals, and the writer's round trip."""

from __future__ import annotations

import pytest

from modelward.durations import duration_seconds, format_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("90s", 90.0),
        ("90 sec", 90.0),
        ("15m", 900.0),
        ("15min", 900.0),
        ("1.5h", 5_400.0),
        ("2D", 172_800.0),
        ("1w", 604_800.0),
        (" 30 ", 30.0),
        (12, 12.0),
        (0.5, 0.5),
        ("0s", 0.0),
    ],
)
def test_a_duration_is_read_in_seconds_whatever_its_unit(text: object, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize(
    "value", ["ten minutes", "5y", "-3m", "", "1h30m", True, float("inf"), float("nan"), -1]
)
def test_what_is_not_a_finite_duration_is_refused(value: object) -> None:
    assert duration_seconds(value) is None


def test_a_bare_number_is_refused_where_a_unit_is_required() -> None:
    assert duration_seconds("30", bare=False) is None
    assert duration_seconds("30m", bare=False) == 1_800.0


@pytest.mark.parametrize("seconds", [45.0, 90.0, 900.0, 5_400.0, 86_400.0, 1_209_600.0, 0.5])
def test_a_written_duration_reads_back_as_the_same_seconds(seconds: float) -> None:
    assert duration_seconds(format_duration(seconds)) == seconds
