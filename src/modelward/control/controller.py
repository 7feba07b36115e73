"""The controller: one process at a time (the holder of the store lease ``controller``) runs the
periodic tasks that act on deployments: the canary task, and any task given to it (drift and
performance monitors, retrain triggers).

It runs inside ``modelward serve`` (:meth:`Controller.run_forever_async`, started by the lifespan)
and as ``modelward controller`` (:meth:`Controller.run_forever`) for set-ups with several replicas;
every candidate tries the lease each interval and only the holder acts, so any number of replicas
can run it. A holder that stops renewing (crash, lost database) is replaced once its lease expires
(``lease_ttl``); one that stops cleanly releases it at once. Writes are also conditional on the
deployment revision read, so even a holder whose lease lapsed mid-tick never overwrites a newer spec.

The clock is an argument (``tick(now)``), so tests drive a canary through its steps without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from modelward.control.canary_task import CANARY_ACTIONS, AlertSink, CanaryTask
from modelward.errors import ConfigError
from modelward.registry.registry import Registry
from modelward.store.lease import Lease

if TYPE_CHECKING:
    from modelward.config import Settings

__all__ = [
    "CANARY_ACTIONS",
    "LEASE_NAME",
    "AlertSink",
    "CanaryTask",
    "Controller",
    "ControllerTask",
    "TickReport",
    "controller_from_settings",
    "default_holder",
]

log = logging.getLogger("modelward.controller")

LEASE_NAME = "controller"


SLOW_TICK_SECONDS = 0.5  # a slower tick is logged (info) with its duration


def _plain(value: Any) -> Any:
    """A task's result in JSON-friendly form (objects with ``to_dict``, nested lists and dicts)."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@runtime_checkable
class ControllerTask(Protocol):
    """What the controller runs each interval while it holds the lease.

    ``name`` labels the task in logs and reports; ``run(now)`` does one round of work at UNIX time
    ``now`` (blocking calls are fine: the async entry point runs ticks in a thread) and returns
    anything JSON-friendly worth reporting (or None). An exception is logged and reported; it stops
    neither the other tasks nor the next tick.
    """

    name: str

    def run(self, now: float) -> Any: ...


def default_holder() -> str:
    """``host:pid``: unique per process, readable in ``modelward deploy status``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class TickReport:
    """One tick: whether this controller held the lease, and each task's result or error."""

    holder: str
    acting: bool
    at: float
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "acting": self.acting,
            "at": self.at,
            "results": {name: _plain(value) for name, value in self.results.items()},
            "errors": self.errors,
        }


class Controller:
    """Runs ``tasks`` (and the canary task unless ``canary=False``) every ``interval`` seconds while
    holding the store lease ``controller`` (renewed each tick, valid ``lease_ttl`` seconds)."""

    def __init__(
        self,
        registry: Registry,
        *,
        holder: str | None = None,
        interval: float = 5.0,
        lease_ttl: float = 15.0,
        tasks: Sequence[ControllerTask] = (),
        alert: AlertSink | None = None,
        canary: bool = True,
        clock: Callable[[], float] = time.time,
        gauges: Any = None,
    ) -> None:
        if not interval > 0:
            raise ConfigError("the controller's interval must be positive")
        if not lease_ttl > interval:
            raise ConfigError(
                f"the lease ({lease_ttl:g} s) must outlive an interval ({interval:g} s), "
                "or it lapses between ticks"
            )
        self.registry = registry
        self.holder = holder or default_holder()
        self.interval = interval
        self.lease_ttl = lease_ttl
        self.alert = alert
        self.clock = clock
        own = [CanaryTask(registry, alert=alert, actor=f"controller:{self.holder}")] if canary else []
        for task in own:
            task.gauges = gauges
        self.tasks: list[ControllerTask] = [*own, *tasks]
        self.lease = Lease(registry.store, LEASE_NAME, holder=self.holder, ttl=lease_ttl)
        self.gauges = gauges  # a ControllerGauges: lease held or not after each attempt, canaries
        self._stop = threading.Event()

    def tick(self, now: float | None = None) -> TickReport:
        """Renew (or try to take) the lease; if held, run every task once at ``now``."""
        now = self.clock() if now is None else now
        held = self.lease.acquire(now)
        if self.gauges is not None:
            self.gauges.lease(held, now)
        if not held:
            return TickReport(self.holder, False, now)
        results: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for task in self.tasks:
            try:
                results[task.name] = task.run(now)
            except Exception as exc:
                log.exception("controller task %s failed", task.name)
                errors[task.name] = f"{type(exc).__name__}: {exc}"
        return TickReport(self.holder, True, now, results, errors)

    def release(self) -> None:
        """Give the lease up so another controller takes over at its next tick."""
        try:
            self.lease.release()
        except Exception:
            log.exception("controller %s could not release its lease", self.holder)

    def stop(self) -> None:
        """Ask :meth:`run_forever` / :meth:`run_forever_async` to end after the current tick."""
        self._stop.set()

    def _safe_tick(self) -> TickReport | None:
        began = time.perf_counter()
        try:
            return self.tick()
        except Exception:
            log.exception("controller tick failed (store unreachable?); retrying in %s s", self.interval)
            return None
        finally:
            took = time.perf_counter() - began
            if took > SLOW_TICK_SECONDS:  # inside a server it shares the GIL with the request path
                log.info("controller tick took %.2f s", took)

    def run_forever(self, *, on_tick: Callable[[TickReport], None] | None = None) -> None:
        """Tick every interval until :meth:`stop` (or Ctrl-C); releases the lease on the way out."""
        try:
            while not self._stop.is_set():
                report = self._safe_tick()
                if report is not None and on_tick is not None:
                    on_tick(report)
                self._stop.wait(self.interval)
        finally:
            self.release()

    async def run_forever_async(self) -> None:
        """The same loop for the server's event loop: store calls run in a thread. Cancel the task
        (or call :meth:`stop`) to end it; the lease is released either way."""
        try:
            while not self._stop.is_set():
                await asyncio.to_thread(self._safe_tick)
                await asyncio.sleep(self.interval)
        finally:
            self.release()


def controller_from_settings(
    registry: Registry,
    settings: Settings,
    *,
    holder: str | None = None,
    interval: float = 5.0,
    lease_ttl: float = 15.0,
    monitor: bool = True,
    models: Sequence[str] | None = None,
    drift_gauges: Any = None,
    performance_gauges: Any = None,
    log_metrics: Any = None,
    controller_gauges: Any = None,
    retrain: bool = True,
) -> Controller:
    """The controller ``modelward serve`` and ``modelward controller`` run: the canary task, alerts
    through the :class:`~modelward.monitoring.alerts.AlertCenter` of the alerts file
    (``MODELWARD_ALERTS_FILE``; the log notifier by default), and the drift and performance monitor
    (:class:`~modelward.control.monitor.MonitorTask`) unless ``monitor=False``, over ``models`` (all
    registered when None), keeping the given drift and performance gauges fresh; and the prediction
    log's retention (:class:`~modelward.monitoring.log_retention.RetentionTask`) when
    ``MODELWARD_LOG_RETENTION`` is set, its deleted counts and the log's size reported to
    ``log_metrics`` (a :class:`~modelward.monitoring.metrics.ServingMetrics`) when given; the
    lease and canary gauges to ``controller_gauges`` (a ``ControllerGauges``) when given; and the
    retraining task (:class:`~modelward.control.retrain.RetrainTask`) unless ``retrain=False``, its
    metrics in ``controller_gauges``'s Prometheus registry when given."""
    from modelward.monitoring.alert_config import load_alert_config

    config = load_alert_config(settings.alerts_file, allow_private=settings.alerts_allow_private)
    center = config.center(registry.store)
    tasks: list[ControllerTask] = []
    if monitor:
        from modelward.control.monitor import MonitorTask

        tasks.append(
            MonitorTask(
                registry,
                center,
                rules=config.rules,
                models=models,
                window_seconds=config.window,
                interval=settings.monitor_interval,
                drift_gauges=drift_gauges,
                performance_gauges=performance_gauges,
            )
        )
    if retrain:
        tasks.append(_retrain_task(registry, settings, center.event, models, controller_gauges, holder))
    # -- prediction log retention --
    retention = _retention_task(registry, settings, log_metrics)
    if retention is not None:
        tasks.append(retention)
    # -- the closed loop: automatic rollout, rollback on live performance (docs/loop.md) --
    from modelward.control.loop_tasks import rollout_tasks

    holder = holder or default_holder()
    tasks.extend(rollout_tasks(registry, settings, center, holder, controller_gauges))
    return Controller(
        registry,
        holder=holder,
        interval=interval,
        lease_ttl=lease_ttl,
        tasks=tasks,
        alert=center.event,
        gauges=controller_gauges,
    )


def _retrain_task(
    registry: Registry,
    settings: Settings,
    alert: AlertSink,
    models: Sequence[str] | None,
    gauges: Any,
    holder: str | None,
) -> ControllerTask:
    from modelward.control.retrain import Retrainer, RetrainTask

    metrics = None
    if gauges is not None:
        from modelward.monitoring.retrain_metrics import RetrainMetrics

        metrics = RetrainMetrics(gauges.registry)
    actor = f"controller:{holder or default_holder()}"
    retrainer = Retrainer.from_settings(registry, settings, alert=alert, metrics=metrics, actor=actor)
    return RetrainTask(retrainer, models=models, interval=settings.monitor_interval)


def _retention_task(registry: Registry, settings: Settings, log_metrics: Any) -> ControllerTask | None:
    from modelward.monitoring.log_retention import RetentionPolicy, RetentionTask

    policy = RetentionPolicy.from_spec(settings.log_retention)
    if not policy.enabled:
        return None
    return RetentionTask(
        registry.store,
        policy,
        on_deleted=None if log_metrics is None else log_metrics.log_retention_deleted,
        on_size=None if log_metrics is None else log_metrics.log_size,
    )
