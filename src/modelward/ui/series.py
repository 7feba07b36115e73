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
from dataclasses import dataclass, field

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


@dataclass(frozen=True, slots=True)
class Slots:
    """``count`` slots of ``seconds`` each, ending at ``until`` (aligned to whole minutes)."""

    until: float
    seconds: float
    count: int

    @property
    def since(self) -> float:
        return self.until - self.seconds * self.count

    @property
    def starts(self) -> list[float]:
        return [self.since + i * self.seconds for i in range(self.count)]


def slots(window: float, now: float, count: int = 12) -> Slots:
    until = math.ceil(now / 60.0) * 60.0
    return Slots(until, max(60.0, math.ceil(window / count / 60.0) * 60.0), count)


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


def traffic_series(store: Store, model: str, s: Slots, *, sample: int = SAMPLE) -> TrafficSeries:
    starts = s.starts
    c = live_profiles.c
    counts: dict[str, list[float | None]] = defaultdict(lambda: [0.0] * s.count)
    query = (
        select(c.version, c.arm, c.bucket, func.sum(c.rows))
        .where(c.model == model, c.bucket >= s.since, c.bucket < s.until)
        .group_by(c.version, c.arm, c.bucket)
    )
    p = predictions.c
    with store.read() as conn:
        for version, arm, bucket, n in conn.execute(query):
            i = min(int((float(bucket) - s.since) // s.seconds), s.count - 1)
            counts[_label(version, arm)][i] = (counts[_label(version, arm)][i] or 0.0) + float(n or 0)
        per_slot: list[dict[str, tuple[list[float], int]]] = []
        sampled = 0
        for start in starts:
            rows = conn.execute(
                select(p.version, p.arm, p.latency_ms, p.error.is_not(None))
                .where(p.model == model, p.ts >= start, p.ts < start + s.seconds)
                .order_by(p.ts.desc())
                .limit(sample)
            ).all()
            sampled += len(rows)
            found: dict[str, tuple[list[float], int]] = {}
            for version, arm, latency, failed in rows:
                lat, err = found.get(_label(version, arm), ([], 0))
                lat.append(float(latency))
                found[_label(version, arm)] = (lat, err + int(bool(failed)))
            per_slot.append(found)
    out = TrafficSeries(starts, sampled=sampled)
    for key, per in sorted(counts.items()):
        out.rate[key] = [None if n is None else n / s.seconds for n in per]
    for key in sorted({k for found in per_slot for k in found}):
        arms = [found.get(key, ([], 0)) for found in per_slot]
        out.p50[key] = [float(np.percentile(lat, 50)) if lat else None for lat, _ in arms]
        out.p95[key] = [float(np.percentile(lat, 95)) if lat else None for lat, _ in arms]
        out.errors[key] = [err / len(lat) if lat else None for lat, err in arms]
    return out


@dataclass(frozen=True, slots=True)
class DriftMap:
    """Per feature, per slot: (statistic as a share of its threshold, drifted?); ``None`` cells had
    no traffic. ``drifted`` names the features that drifted in any slot."""

    times: list[float]
    cells: dict[str, list[tuple[float | None, bool]]]
    drifted: tuple[str, ...]


def _share(method: str, statistic: float, threshold: float, p_value: float | None) -> float:
    if method in ("ks", "chi2") and p_value is not None:
        # a p-value at the threshold reads as 1; far above it as near 0
        return min(1.0, threshold / max(p_value, 1e-12))
    return statistic / threshold if threshold > 0 else 0.0


def drift_map(store: Store, reference: DatasetProfile, model: str, version: str, s: Slots) -> DriftMap:
    features = list(reference.features)
    cells: dict[str, list[tuple[float | None, bool]]] = {f: [] for f in features}
    drifted: set[str] = set()
    for start in s.starts:
        window, _ = window_profile(
            store, reference, model, since=start, until=start + s.seconds, version=version
        )
        report = compare_profiles(reference, window) if window.n_rows else None
        for name in features:
            if report is None:
                cells[name].append((None, False))
                continue
            f = report.feature(name)
            cells[name].append((_share(f.method, f.statistic, f.threshold, f.p_value), f.drifted))
            if f.drifted:
                drifted.add(name)
    return DriftMap(s.starts, cells, tuple(f for f in features if f in drifted))
