"""Durations written by people: ``250ms``, ``90s``, ``15m``, ``1.5h``, ``2d``, ``1w`` or plain seconds.

One reader for every setting, rule, window and CLI option that takes a duration. Each caller keeps its
own rules (may it be zero? which error names the setting?) and its own message; this module only says
how many seconds a text means.
"""

from __future__ import annotations

import math
import re

__all__ = ["UNITS", "duration_seconds", "format_duration"]

UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3_600.0,
    "d": 86_400.0,
    "w": 604_800.0,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)?\s*$", re.IGNORECASE)


def duration_seconds(value: object, *, bare: bool = True) -> float | None:
    """Seconds meant by ``value``, or None when it is not a finite duration >= 0.

    ``value`` is a number of seconds or a text: a number followed by one of :data:`UNITS` (any case,
    spaces allowed). ``bare=False`` refuses a text without a unit (``"30"``), for the places where a
    bare number would be ambiguous. Booleans are not numbers here.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None or (match.group(2) is None and not bare):
            return None
        seconds = float(match.group(1)) * UNITS[(match.group(2) or "s").lower()]
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def format_duration(seconds: float) -> str:
    """``86400`` as ``1d``, ``5400`` as ``90m``: the largest unit that divides it, else seconds."""
    for unit in ("w", "d", "h", "m"):
        size = UNITS[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
