"""Time series of one model for the dashboard, read in bounded work whatever the size of the log.

The time range is cut into ``slots``. Traffic per arm comes from the live profiles' row counts (one
small row per minute, version, arm and writer: exact, and a day is 1,440 of them per arm). Latency
percentiles and error rates come from a sample: the newest ``sample`` rows of each slot, read
backwards along the ``(model, ts)`` index, so a slot costs the same at 10 and at 10,000 requests
per second. Drift per feature per slot merges that slot's live profiles and compares them with the
reference.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select

from modelward.drift.detect import compare_profiles
from modelward.drift.profile import DatasetProfile
from modelward.monitoring.live_drift import window_profile
from modelward.store.store import Store
from modelward.store.tables import live_profiles, predictions

__all__ = ["DriftMap", "Slots", "TrafficSeries", "drift_map", "slots", "traffic_series"]

SAMPLE = 300
"""Rows read per slot for latency and errors."""
Keep = Callable[[tuple[str, ...], float, Callable[[], Any]], Any]


@dataclass(frozen=True, slots=True)
class Slots:
    """``count`` slots of ``seconds`` each, ending at ``until``; the last one may still be going on at
    ``now`` (None: every slot has ended)."""

    until: float
    seconds: float
    count: int
    now: float | None = None

    @property
    def since(self) -> float:
        return self.until - self.seconds * self.count

    @property
    def starts(self) -> list[float]:
        return [self.since + i * self.seconds for i in range(self.count)]

    def elapsed(self, start: float) -> float:
        """Seconds of the slot starting at ``start`` that have passed (whole minutes: the live
        profiles' buckets): ``seconds`` but for the slot going on."""
        if self.now is None or self.now >= start + self.seconds:
            return self.seconds
        return max(60.0, math.ceil((self.now - start) / 60.0) * 60.0)


def slots(window: float, now: float, count: int = 12) -> Slots:
    """``count`` slots covering about ``window`` up to ``now``, each a whole number of minutes and
    aligned to its own length (slots of two hours start at 00:00, 02:00, ...): every slot but the
    newest stays the same slot, with the same key, until the newest has ended, so what was read of
    a slot that has ended is kept and reused (:meth:`modelward.ui.board.Board.slot`)."""
    seconds = max(60.0, math.ceil(window / count / 60.0) * 60.0)
    return Slots(math.ceil(now / seconds) * seconds, seconds, count, now)


@dataclass(frozen=True, slots=True)
class TrafficSeries:
    """Per arm (``version/arm`` labels): rows per second, p50/p95 latency (ms) and error share."""

    times: list[float]
    rate: dict[str, list[float | None]] = field(default_factory=dict)
    p50: dict[str, list[float | None]] = field(default_factory=dict)
    p95: dict[str, list[float | None]] = field(default_factory=dict)
    errors: dict[str, list[float | None]] = field(default_factory=dict)
    sampled: int = 0


def _label(version: object, arm: object) -> str:
    return f"v{version}" + (f" {arm}" if arm else "")


def _rows(store: Store, model: str, start: float, seconds: float) -> dict[str, float]:
    """Rows served per arm in one slot, from the live profiles' counts."""
    c = live_profiles.c
    query = (
        select(c.version, c.arm, func.sum(c.rows))
        .where(c.model == model, c.bucket >= start, c.bucket < start + seconds)
        .group_by(c.version, c.arm)
    )
    with store.read() as conn:
        return {_label(version, arm): float(n or 0) for version, arm, n in conn.execute(query)}


def _sample(
    store: Store, model: str, start: float, seconds: float, sample: int
) -> dict[str, tuple[list[float], int]]:
    """Latencies and failures of the newest ``sample`` requests of one slot, by arm."""
    p = predictions.c
    query = (
        select(p.version, p.arm, p.latency_ms, p.error.is_not(None))
        .where(p.model == model, p.ts >= start, p.ts < start + seconds)
        .order_by(p.ts.desc())
        .limit(sample)
    )
    found: dict[str, tuple[list[float], int]] = {}
    with store.read() as conn:
        for version, arm, latency, failed in conn.execute(query):
            lat, err = found.get(_label(version, arm), ([], 0))
            lat.append(float(latency))
            found[_label(version, arm)] = (lat, err + int(bool(failed)))
    return found


def traffic_series(
    store: Store, model: str, s: Slots, *, sample: int = SAMPLE, keep: Keep | None = None
) -> TrafficSeries:
    """Rates per arm from the live profiles, latency and errors from each slot's sample;
    ``keep(key, slot_end, read)`` may keep a slot's sample (see :func:`drift_map`)."""
    starts = s.starts
    counts: dict[str, list[float | None]] = defaultdict(lambda: [0.0] * s.count)
    per_slot: list[dict[str, tuple[list[float], int]]] = []
    for i, start in enumerate(starts):

        def read(start: float = start) -> tuple[dict[str, float], dict[str, tuple[list[float], int]]]:
            return _rows(store, model, start, s.seconds), _sample(store, model, start, s.seconds, sample)

        slot_key = ("traffic", model, f"{s.seconds:g}", f"{start:.0f}")
        rows, found = keep(slot_key, start + s.seconds, read) if keep is not None else read()
        for label, n in rows.items():
            counts[label][i] = n
        per_slot.append(found)
    sampled = sum(len(lat) for found in per_slot for lat, _ in found.values())
    out = TrafficSeries(starts, sampled=sampled)
    for key, per in sorted(counts.items()):
        out.rate[key] = [None if n is None else n / s.elapsed(t) for n, t in zip(per, starts, strict=True)]
    for key in sorted({k for found in per_slot for k in found}):
        arms = [found.get(key, ([], 0)) for found in per_slot]
        out.p50[key] = [float(np.percentile(lat, 50)) if lat else None for lat, _ in arms]
        out.p95[key] = [float(np.percentile(lat, 95)) if lat else None for lat, _ in arms]
        out.errors[key] = [err / len(lat) if lat else None for lat, err in arms]
    return out


@dataclass(frozen=True, slots=True)
class DriftMap:
    """Per feature, per slot: (statistic as a share of its threshold, drifted?); ``None`` cells had
    no traffic. ``drifted`` names the features that drifted in any slot; ``current`` is the live
    profile of the whole range (None without traffic)."""

    times: list[float]
    cells: dict[str, list[tuple[float | None, bool]]]
    drifted: tuple[str, ...]
    current: DatasetProfile | None


def _share(method: str, statistic: float, threshold: float, p_value: float | None) -> float:
    if method in ("ks", "chi2") and p_value is not None:
        # a p-value at the threshold reads as 1; far above it as near 0
        return min(1.0, threshold / max(p_value, 1e-12))
    return statistic / threshold if threshold > 0 else 0.0


def _slot_drift(
    store: Store, reference: DatasetProfile, model: str, version: str, start: float, seconds: float
) -> tuple[DatasetProfile | None, dict[str, tuple[float | None, bool]]]:
    window, _ = window_profile(store, reference, model, since=start, until=start + seconds, version=version)
    if not window.n_rows:
        return None, {name: (None, False) for name in reference.features}
    report = compare_profiles(reference, window)
    cells: dict[str, tuple[float | None, bool]] = {}
    for name in reference.features:
        f = report.feature(name)
        cells[name] = (_share(f.method, f.statistic, f.threshold, f.p_value), f.drifted)
    return window, cells


def drift_map(
    store: Store, reference: DatasetProfile, model: str, version: str, s: Slots, keep: Keep | None = None
) -> DriftMap:
    """The heat map's cells; ``keep(key, slot_end, read)`` may keep each slot's result (a slot that
    has ended does not change)."""
    features = list(reference.features)
    cells: dict[str, list[tuple[float | None, bool]]] = {f: [] for f in features}
    current: DatasetProfile | None = None
    for start in s.starts:

        def read(start: float = start) -> Any:
            return _slot_drift(store, reference, model, version, start, s.seconds)

        key = ("drift", model, version, f"{s.seconds:g}", f"{start:.0f}")
        window, slot_cells = keep(key, start + s.seconds, read) if keep is not None else read()
        for name in features:
            cells[name].append(slot_cells[name])
        if window is not None:
            current = window if current is None else current.merge(window)
    drifted = tuple(f for f in features if any(d for _, d in cells[f]))
    return DriftMap(s.starts, cells, drifted, current)
