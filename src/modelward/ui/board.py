"""What the dashboard's pages show, as plain data: each model's row of the overview, a model's page,
the audit timeline. Every read is bounded (a time range on an index, a row limit or a sample), so a
page costs the same with a day of traffic logged as with a minute (docs/dashboard.md has figures).

Reference profiles are kept once read: they are pinned by sha256 at registration and never change.
A version's facts (task, classes: pinned too; calibration, which ``modelward calibrate`` may add) are
kept a minute and read again behind the page. What the MLflow registry answers (models, aliases,
versions) is read again behind the page once ``registry_ttl`` seconds old (5 by default), so a page
shows what the registry said on the view before at the latest; an action taken from the dashboard
forgets it at once. Each MLflow read costs tens of milliseconds, more than a whole page's store reads.
Performance (labels arrive late anyway) is read again behind the page too; traffic and drift of the
newest slots are read before the page answers.

One read of a key at a time: a page that asks for what another page (or the start-up warm-up,
:meth:`Board.warm`) is reading waits for that answer instead of reading it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from modelward.control.monitor import traffic_stats
from modelward.control.status import last_decisions
from modelward.drift.profile import DatasetProfile
from modelward.errors import ModelwardError
from modelward.feedback.calibrate import version_facts
from modelward.feedback.performance import PerformanceReport, live_performance
from modelward.governance.gates import latest_validation
from modelward.governance.reports import VersionReports
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.live_drift import live_report, load_reference
from modelward.registry import DEFAULT_ALIAS, Registry
from modelward.registry.types import TAG_PREFIX, ModelInfo, VersionInfo
from modelward.routing.spec import DeploymentSpec

__all__ = ["Board", "ModelRow"]

log = logging.getLogger("modelward.ui")

OVERVIEW_WINDOW = 300.0
"""Traffic, errors and latency of the overview: the last five minutes."""
DRIFT_WINDOW = 900.0
"""Drift verdict of the overview: the last fifteen minutes of live profiles."""
PERFORMANCE_ROWS = 2_000
"""Newest predictions the live and estimated performance read."""
T = TypeVar("T")
MAX_KEPT = 5_000
FACTS_TTL = 60.0
"""A version's facts are read again (behind the page) after a minute: a new calibration shows then."""
FINAL_TTL = 600.0
"""A slot that has ended is read again (behind the page) after ten minutes: late labels."""
LINEAGE = (
    "dataset.sha256",
    "dataset.path",
    "federation.rounds",
    "federation.nodes",
    "git.commit",
    "git.branch",
    "dvc.path",
    "run_id",
)


@dataclass(frozen=True, slots=True)
class ModelRow:
    name: str
    aliases: dict[str, str]
    deployment: str
    canary: dict[str, Any] | None
    next_decision: str | None
    requests: int
    rate: float
    error_rate: float | None
    p95_ms: float | None
    drift: str  # ok | drifted | no traffic | unknown
    drifted_features: tuple[str, ...]
    performance: dict[str, float | None]
    estimated: dict[str, float | None]
    alerts: list[dict[str, Any]]
    problems: tuple[str, ...]

    @property
    def red(self) -> bool:
        return bool(self.problems)


def _metrics(group: Any, attr: str) -> dict[str, float | None]:
    if group is None:
        return {}
    found = getattr(group, attr)
    return {k: getattr(v, "value", None) for k, v in list(found.items())[:3]}


class Board:
    """Reads for the pages over one registry (and its store)."""

    def __init__(
        self, registry: Registry, *, error_threshold: float = 0.05, registry_ttl: float = 5.0
    ) -> None:
        self.registry = registry
        self.store = registry.store
        self.error_threshold = error_threshold
        self.registry_ttl = registry_ttl
        self._references: dict[tuple[str, str], DatasetProfile] = {}
        self._kept: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._reading: dict[tuple[str, ...], threading.Event] = {}
        self._generation = 0  # moved on by forget(): a read begun before it is not kept
        self._lock = threading.Lock()
        self.warmed = threading.Event()
        self._warming = threading.local()  # set in the thread of warm(): newest slots are not kept
        """Set when :meth:`warm` has read every page once (or failed)."""

    def cached(
        self, key: tuple[str, ...], read: Callable[[], T], ttl: float | None = None, *, stale: bool = False
    ) -> T:
        """``read()``'s answer, kept ``ttl`` seconds (``registry_ttl`` by default). With ``stale``, an
        answer older than that is still given at once while a thread reads the new one."""
        ttl = self.registry_ttl if ttl is None else ttl
        while True:
            now = time.monotonic()
            with self._lock:
                found = self._kept.get(key)
                if found is not None and now - found[0] < ttl:
                    return found[1]  # type: ignore[no-any-return]
                reading = self._reading.get(key)
                if found is not None and stale:
                    if reading is None:
                        self._read_behind(key, read)
                    return found[1]  # type: ignore[no-any-return]
                if reading is None:
                    self._reading[key] = threading.Event()
                    break
            reading.wait()  # another thread reads it: take its answer (or read it, if that failed)
        return self._read(key, read)  # type: ignore[no-any-return]

    def _read_behind(self, key: tuple[str, ...], read: Callable[[], Any]) -> None:
        """Start reading ``key`` in a thread of its own; the caller holds the lock and has checked
        that no read of ``key`` is under way."""
        self._reading[key] = threading.Event()
        threading.Thread(target=self._read, args=(key, read, True), daemon=True).start()

    def _read(self, key: tuple[str, ...], read: Callable[[], Any], behind: bool = False) -> Any:
        """Run ``read`` for ``key`` (whose reading event the caller registered) and keep its answer.
        Behind a page (``behind``), a failure keeps the older answer: it is logged, not raised."""
        generation = self._generation
        try:
            value = read()
        except Exception:
            if not behind:
                raise
            log.warning("dashboard: reading %s again failed; the older answer stays", key, exc_info=True)
            return None
        else:
            with self._lock:
                if len(self._kept) > MAX_KEPT:
                    self._kept.clear()
                if generation == self._generation:
                    self._kept[key] = (time.monotonic(), value)
            return value
        finally:
            with self._lock:
                self._reading.pop(key).set()

    def slot(
        self,
        key: tuple[str, ...],
        end: float,
        read: Callable[[], T],
        now: float | None = None,
        *,
        stale: bool = False,
    ) -> T:
        """What ``read`` says of a time slot ending at ``end``. A slot that ended over two minutes ago
        is final (its live profiles are written; late labels aside): once read it is always answered
        at once, and read again behind the page every ten minutes. The newest slots are read again
        after fifteen seconds: before the page answers, or behind it with ``stale``."""
        now = time.time() if now is None else now
        if end < now - 120:
            return self.cached(("slot", *key, f"{end:.0f}"), read, FINAL_TTL, stale=True)
        if getattr(self._warming, "on", False):
            # Read, not kept: a page opened soon after start-up must show the traffic since.
            return read()
        return self.cached(("slot", *key, f"{end:.0f}"), read, 15.0, stale=stale)

    @contextmanager
    def warming(self) -> Iterator[None]:
        """Reads in this block (start-up's) keep what does not change, not the newest slots."""
        self._warming.on = True
        try:
            yield
        finally:
            self._warming.on = False

    def later(self, key: tuple[str, ...], read: Callable[[], T], ttl: float) -> tuple[T | None, bool]:
        """The value ``read`` gave last (None before its first answer) and whether it is being read
        again: ``read`` runs in a thread of its own, so a slow report never holds a page up. A read
        that fails gives ``{"problem": message}``, shown on the page in place of the report."""

        def read_or_problem() -> Any:
            try:
                return read()
            except Exception as exc:
                return {"problem": str(exc)}

        key = ("later", *key)
        now = time.monotonic()
        with self._lock:
            found = self._kept.get(key)
            running = key in self._reading
            if (found is None or now - found[0] >= ttl) and not running:
                self._read_behind(key, read_or_problem)
                running = True
        return (found[1] if found is not None else None), running

    def forget(self) -> None:
        """Read the registry again on the next page (after an action changed it)."""
        with self._lock:
            self._kept.clear()
            self._generation += 1

    def model(self, name: str) -> ModelInfo:
        return self.cached(("model", name), lambda: self.registry.model(name), stale=True)

    def version_list(self, name: str) -> list[VersionInfo]:
        return self.cached(("versions", name), lambda: self.registry.versions(name), stale=True)

    def performance(self, name: str, since: float, until: float, max_rows: int) -> PerformanceReport:
        """Live and label-free performance of the newest ``max_rows`` predictions in the window."""

        return live_performance(
            self.store, name, since=since, until=until, facts=self.facts_of(name), max_rows=max_rows
        )

    def facts_of(self, name: str) -> Callable[[str], Any]:
        """Each version's facts (MLflow reads and an artifact download), kept :data:`FACTS_TTL`."""

        def facts(version: str) -> Any:
            return self.cached(
                ("facts", name, version),
                lambda: version_facts(self.registry, name, version),
                FACTS_TTL,
                stale=True,
            )

        return facts

    def reference(self, model: str, version: str) -> DatasetProfile:
        key = (model, version)
        with self._lock:
            found = self._references.get(key)
        if found is None:
            found = load_reference(self.registry, model, version)
            with self._lock:
                self._references[key] = found
        return found

    def models(self) -> list[ModelInfo]:
        return self.cached(
            ("models",), lambda: sorted(self.registry.models(), key=lambda m: m.name), stale=True
        )

    def spec(self, name: str) -> tuple[DeploymentSpec, int]:
        dep = self.registry.deployments.get(name)
        return (dep.spec, dep.revision) if dep is not None else (DeploymentSpec.single(name), 0)

    def overview(self, now: float | None = None) -> list[ModelRow]:
        now = time.time() if now is None else now
        firing = AlertCenter(self.store, ()).active()
        return [self.row(info, now, [a for a in firing if a.model == info.name]) for info in self.models()]

    def drift(
        self, name: str, version: str, now: float, window: float = DRIFT_WINDOW
    ) -> tuple[str, tuple[str, ...]]:
        try:
            live = live_report(
                self.store, name, version, window, reference=self.reference(name, version), now=now
            )
        except ModelwardError:
            return "unknown", ()
        if live.report is None:
            return "no traffic", ()
        # Red on the first drifted feature: the data set's verdict (a share of features) comes later.
        features = live.report.drifted_features
        return ("drifted" if live.dataset_drift or features else "ok"), features

    def row(self, info: ModelInfo, now: float, alerts: list[Any]) -> ModelRow:
        spec, _ = self.spec(info.name)
        canary = spec.canary.to_dict() if spec.canary is not None else None
        decision = None
        if spec.canary is not None:
            last = last_decisions(self.registry, info.name, limit=1)
            decision = "; ".join(last[0]["reasons"]) if last else "waiting for the controller"
        traffic = traffic_stats(self.store, info.name, now - OVERVIEW_WINDOW, now)
        champion = info.aliases.get(DEFAULT_ALIAS) or info.latest_version
        verdict, features = (
            self.cached(("drift", info.name, champion), lambda: self.drift(info.name, champion, now), 10.0)
            if champion
            else ("unknown", ())
        )
        report = self.cached(
            ("performance", info.name),
            lambda: self.performance(info.name, now - 3600, now, PERFORMANCE_ROWS),
            30.0,
            stale=True,
        )
        group = report.of_version(champion) if champion else None
        problems = []
        error_rate = traffic.errors / traffic.requests if traffic.requests else None
        if error_rate is not None and error_rate > self.error_threshold:
            problems.append(f"error rate {error_rate:.1%}")
        if verdict == "drifted":
            problems.append("drift: " + ", ".join(features))
        if alerts:
            problems.append(f"{len(alerts)} alert(s) firing")
        return ModelRow(
            name=info.name,
            aliases=dict(sorted(info.aliases.items())),
            deployment=spec.describe(),
            canary=canary,
            next_decision=decision,
            requests=traffic.requests,
            rate=traffic.requests / OVERVIEW_WINDOW,
            error_rate=error_rate,
            p95_ms=traffic.p95_ms,
            drift=verdict,
            drifted_features=features,
            performance=_metrics(group, "metrics"),
            estimated=_metrics(group, "estimated"),
            alerts=[a.to_dict() for a in alerts],
            problems=tuple(problems),
        )

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Newest first: aliases, lineage, the newest validation and fairness report."""
        reports = VersionReports(self.store)
        out = []
        for v in sorted(self.version_list(name), key=lambda v: -int(v.version) if v.version.isdigit() else 0):
            validation = latest_validation(self.registry, name, v.version)
            fairness = reports.latest(name, v.version, "fairness")
            out.append(
                {
                    "version": v.version,
                    "aliases": v.aliases,
                    "created": v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else "",
                    "archived": v.archived,
                    "lineage": {k: v.tags[TAG_PREFIX + k] for k in LINEAGE if TAG_PREFIX + k in v.tags},
                    "gates": None if validation is None else validation.verdict,
                    "failing": [] if validation is None else [g.name for g in validation.failing],
                    "fairness": None if fairness is None else fairness.body.get("verdict", "stored"),
                }
            )
        return out
