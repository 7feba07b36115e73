"""Live drift: a window of served traffic, read back from the live profiles, against the reference.

A window is the merge of the ``modelward_live_profiles`` rows of its time buckets, over every writer
(worker process or replica) that served the model: :func:`window_profile`. A bucket that only partly
overlaps the window counts whole, so a window's edges are rounded out to whole buckets (a minute by
default): a "last hour" window read at 10:30:20 covers 09:30:00 to 10:31:00. :func:`live_report`
compares that window with the version's reference profile (:func:`load_reference`, which downloads
only the profile artifact and checks its sha256 pin, without loading the model) and returns a typed
:class:`LiveDriftReport`.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import func, select

from modelward.drift.detect import DriftConfig, DriftReport, compare_profiles
from modelward.drift.profile import DatasetProfile
from modelward.durations import duration_seconds
from modelward.errors import ConfigError, IntegrityError
from modelward.monitoring._live_counts import Plan
from modelward.registry.integrity import hash_bytes
from modelward.registry.register import PROFILE_FILE
from modelward.registry.registry import DEFAULT_ALIAS, Registry
from modelward.registry.types import TAG_PREFIX
from modelward.store.store import Store
from modelward.store.tables import live_profiles

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

__all__ = [
    "LiveDriftReport",
    "default_version",
    "live_report",
    "live_versions",
    "load_reference",
    "parse_window",
    "window_profile",
]

log = logging.getLogger("modelward.live_drift")


def parse_window(text: str) -> float:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"7d"``, ``"2w"`` (or plain seconds) as seconds; else ConfigError."""
    seconds = duration_seconds(text)
    if not seconds:
        raise ConfigError(f"cannot read {text!r} as a window: use a duration such as 30m, 1h, 1d or 7d")
    return seconds


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class LiveDriftReport:
    """Drift of one version's live traffic over a window, or "no traffic" when the window is empty.

    ``since`` and ``until`` are the window asked for (UNIX seconds); the buckets that overlap it count
    whole. ``rows`` is the number of served rows in the window, ``parts`` the number of stored bucket
    rows merged (buckets times writers). ``report`` is None exactly when ``rows`` is 0.
    """

    model: str
    version: str
    arm: str | None
    since: float
    until: float
    rows: int
    parts: int
    report: DriftReport | None
    window: DatasetProfile | None = None  # the merged live profile (for histograms); not in to_dict

    @property
    def status(self) -> str:
        return "no_traffic" if self.report is None else "ok"

    @property
    def bounds(self) -> tuple[str, str]:
        """The window asked for, as ISO-8601 UTC times."""
        return _iso(self.since), _iso(self.until)

    @property
    def dataset_drift(self) -> bool:
        return self.report is not None and self.report.dataset_drift

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "version": self.version,
            "arm": self.arm,
            "status": self.status,
            "window": {
                "since": _iso(self.since),
                "until": _iso(self.until),
                "seconds": self.until - self.since,
            },
            "rows": self.rows,
            "parts": self.parts,
            "drift": None if self.report is None else self.report.to_dict(),
        }


def _window(
    model: str, since: float, until: float, version: str | None, arm: str | None
) -> list[ColumnElement[bool]]:
    c = live_profiles.c
    where = [c.model == model, c.bucket < until, c.bucket + c.seconds > since]
    if version is not None:
        where.append(c.version == str(version))
    if arm is not None:
        where.append(c.arm == arm)
    return where


def window_profile(
    store: Store,
    reference: DatasetProfile,
    model: str,
    *,
    since: float,
    until: float | None = None,
    version: str | None = None,
    arm: str | None = None,
) -> tuple[DatasetProfile, int]:
    """The merged live profile of ``model`` over ``[since, until)`` and the number of rows merged.

    Every writer's rows count (workers, replicas). A bucket that overlaps the window only in part
    counts whole. ``version`` and ``arm`` None mean every version and every arm; rows that were not
    observed on ``reference``'s shape (another version's edges) are skipped.
    """
    until = time.time() if until is None else until
    query = (
        select(live_profiles.c.profile)
        .where(*_window(model, since, until, version, arm))
        .order_by(live_profiles.c.bucket, live_profiles.c.id)
    )
    plan = Plan(reference)
    total, parts, skipped = plan.empty(), 0, 0
    with store.read() as conn:
        for (text,) in conn.execute(query):
            try:
                counts = plan.counts_of(orjson.loads(text))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                counts = None  # not a profile document modelward wrote
            if counts is None:
                skipped += 1
                continue
            total.add(counts)
            parts += 1
    merged = plan.profile(total)
    if skipped:
        log.debug("live drift: %d rows of %s not observed on this reference were skipped", skipped, model)
    return merged, parts


def live_versions(store: Store, model: str, *, since: float, until: float | None = None) -> dict[str, int]:
    """Served rows per version of ``model`` in the window, versions in ascending number order."""
    until = time.time() if until is None else until
    c = live_profiles.c
    query = (
        select(c.version, func.sum(c.rows))
        .where(*_window(model, since, until, None, None))
        .group_by(c.version)
    )
    with store.read() as conn:
        found = {str(v): int(n or 0) for v, n in conn.execute(query)}
    return dict(sorted(found.items(), key=lambda kv: (len(kv[0]), kv[0])))


def default_version(registry: Registry, model: str, *, since: float, until: float | None = None) -> str:
    """The version the champion alias points at; without one, the newest version with live data.

    Raises :class:`~modelward.errors.NotFound` for an unknown model and :class:`ConfigError` when no
    version has live data in the window.
    """
    info = registry.model(model)
    if DEFAULT_ALIAS in info.aliases:
        return info.aliases[DEFAULT_ALIAS]
    served = live_versions(registry.store, model, since=since, until=until)
    if not served:
        raise ConfigError(f"no live data for '{model}' in the window (and it has no {DEFAULT_ALIAS} alias)")
    return max(served, key=int)


def load_reference(registry: Registry, name: str, version: str) -> DatasetProfile:
    """The reference profile of ``name:version``, checked against its sha256 pin; the model itself
    is neither downloaded nor loaded."""
    info = registry.version(name, version)
    pin = registry.manifest(info.name, info.version).get(f"run/{PROFILE_FILE}")
    run_id = info.tags.get(TAG_PREFIX + "run_id")
    folder = info.tags.get(TAG_PREFIX + "artifacts")
    if pin is None or not run_id or not folder:
        raise IntegrityError(
            info.name,
            info.version,
            ["its reference profile has no sha256 pin: it was not registered by modelward"],
        )
    with tempfile.TemporaryDirectory(prefix="modelward-profile-") as tmp:
        try:
            local = registry.client.download_artifacts(run_id, f"{folder}/{PROFILE_FILE}", tmp)
        except Exception as exc:  # MLflow raises several types for a missing artifact
            raise IntegrityError(info.name, info.version, [f"run/{PROFILE_FILE} is missing ({exc})"]) from exc
        data = Path(local).read_bytes()
    found = hash_bytes(data)
    if found != pin.sha256:
        raise IntegrityError(
            info.name,
            info.version,
            [f"run/{PROFILE_FILE} sha256 is {found[:12]}..., expected {pin.sha256[:12]}... (modified)"],
        )
    return DatasetProfile.from_json(data)


def live_report(
    source: Registry | Store,
    model: str,
    version: str,
    window_seconds: float,
    *,
    reference: DatasetProfile | None = None,
    arm: str | None = None,
    config: DriftConfig | None = None,
    now: float | None = None,
) -> LiveDriftReport:
    """Drift of ``model:version`` over the last ``window_seconds`` (up to ``now``) against its reference.

    With a :class:`Registry` the reference is loaded (and checked) unless given; with a bare
    :class:`Store` it must be given. An empty window gives a report whose ``status`` is "no_traffic"
    and whose ``report`` is None: no rows is no evidence of drift.
    """
    if not window_seconds > 0:
        raise ConfigError(f"the drift window must be positive, not {window_seconds} s")
    store = source.store if isinstance(source, Registry) else source
    if reference is None:
        if not isinstance(source, Registry):
            raise ConfigError("live_report on a bare store needs reference=: only a registry can load it")
        reference = load_reference(source, model, version)
    until = time.time() if now is None else now
    since = until - window_seconds
    window, parts = window_profile(
        store, reference, model, since=since, until=until, version=version, arm=arm
    )
    report = compare_profiles(reference, window, config=config) if window.n_rows else None
    return LiveDriftReport(model, str(version), arm, since, until, window.n_rows, parts, report, window)
