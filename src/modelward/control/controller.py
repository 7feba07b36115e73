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
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from modelward.control.canary import CanaryDecision, decide
from modelward.errors import ConfigError
from modelward.governance.promotion import promote_gated
from modelward.monitoring.arm_performance import COUNTED_METRICS, ArmPerformance, arm_performance
from modelward.monitoring.window_stats import ArmWindow, window_stats
from modelward.registry.deployments import Deployment, StaleDeployment
from modelward.registry.registry import DEFAULT_ALIAS, Registry
from modelward.routing.spec import CanaryPlan, DeploymentSpec
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
CANARY_ACTIONS = ("canary_check", "canary_advance", "canary_promote", "canary_rollback")
"""Audit actions of the canary task; ``modelward deploy status`` shows the newest ones."""

AlertSink = Callable[..., object]
"""Called as ``alert(rule, model, subject, message, severity=..., value=...)`` (AlertCenter.event)."""


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


def _plain(value: Any) -> Any:
    """A task's result in JSON-friendly form (objects with ``to_dict``, nested lists and dicts)."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _pick(windows: Sequence[ArmWindow], arm: str, version: str | None = None) -> ArmWindow:
    """The window of ``arm`` (of ``version`` when given and present): the busiest if several."""
    found = [w for w in windows if w.arm == arm]
    exact = [w for w in found if version is not None and w.version == version]
    pool = exact or found
    if not pool:
        return ArmWindow(version or "", arm)
    return max(pool, key=lambda w: w.requests)


# The newest rows of each arm in a step's window that a canary decision reads. The controller may
# run inside a busy server every few seconds: 20,000 rows per arm bound the parsing to a fraction
# of a second while keeping the error-rate bounds within about a percentage point.
CANARY_ROWS_PER_ARM = 20_000
SLOW_TICK_SECONDS = 0.5  # a slower tick is logged (info) with its duration


class CanaryTask:
    """Walks every running canary: gather the step's windows, :func:`decide`, act on the decision.

    advance: store the next step (conditional on the revision read); promote: move the baseline's
    alias (``champion``) to the canary version, then store a single spec serving that alias;
    rollback: store the plan ``rolled_back`` (canary weight 0) with the reasons, and alert. Each
    write's audit event carries the decision; holds are audited as ``canary_check`` when their
    outcome changes (not every tick), so the chain shows why the canary waited without flooding.
    """

    name = "canary"

    def __init__(
        self, registry: Registry, *, alert: AlertSink | None = None, actor: str = "controller"
    ) -> None:
        self.registry = registry
        self.alert = alert
        self.actor = actor
        self.gauges: Any = None  # a ControllerGauges (the Controller's): each canary's percent
        self._tasks: dict[tuple[str, str], Any] = {}
        self._last_hold: dict[str, tuple[int, Any]] = {}

    def run(self, now: float) -> list[dict[str, Any]]:
        out = []
        for dep in self.registry.deployments.all():
            plan = dep.spec.canary
            if plan is not None and self.gauges is not None:
                self.gauges.canary(dep.model, plan.version, plan.percent, plan.state == "rolled_back")
            if plan is None or plan.state != "running":
                continue
            try:
                decision = self.evaluate(dep, now)
                acted = self.act(dep, decision, now)
            except StaleDeployment as exc:
                log.info("canary %s: %s; will look again next tick", dep.model, exc)
                continue
            except Exception as exc:  # one model's trouble (a deleted version, ...) spares the others
                log.exception("canary %s: could not be evaluated", dep.model)
                out.append(
                    {"model": dep.model, "revision": dep.revision, "error": f"{type(exc).__name__}: {exc}"}
                )
                continue
            out.append({"model": dep.model, "revision": acted, **decision.to_dict()})
        return out

    def _task_of(self, model: str, version: str) -> Any:
        key = (model, version)
        if key not in self._tasks:
            task = self.registry.version(model, version).task
            self._tasks[key] = task if task in ("classification", "regression") else None
        return self._tasks[key]

    def evaluate(self, dep: Deployment, now: float) -> CanaryDecision:
        """The decision for ``dep``'s canary at ``now`` (no side effects)."""
        plan = dep.spec.canary
        if plan is None:
            raise ValueError(f"{dep.model} is not running a canary")
        store = self.registry.store
        since = plan.step_started_at if plan.step_started_at is not None else now
        task = self._task_of(dep.model, plan.version)
        cap = CANARY_ROWS_PER_ARM
        windows = window_stats(
            store, dep.model, since, now, include_shadow=False, task=task, max_rows_per_arm=cap
        )
        canary = _pick(windows, "canary", plan.version)
        baseline = _pick(windows, "baseline")
        if plan.percent >= 100:
            # The baseline gets no traffic on the last step: compare with its last step instead.
            earlier = window_stats(
                store,
                dep.model,
                since - plan.step_seconds,
                since,
                include_shadow=False,
                task=task,
                value_edges=canary.value_edges,
                max_rows_per_arm=cap,
            )
            baseline = _pick(earlier, "baseline")
        performance = self._performance(dep.model, plan.rules.metric, since, now)
        return decide(plan, plan.rules, baseline, canary, now, performance)

    def _performance(self, model: str, metric: str, since: float, now: float) -> dict[str, ArmPerformance]:
        """Each arm's live ``metric`` from feedback: counted here for accuracy, error rate, MAE and
        RMSE (with standard errors, so the rule can test significance); others (ROC AUC, F1, ...)
        come from :func:`modelward.feedback.performance.live_performance`."""
        store = self.registry.store
        if metric in COUNTED_METRICS:
            return arm_performance(store, model, since, now, metric=metric)
        try:
            from modelward.feedback.performance import live_performance
        except ImportError:  # pragma: no cover - the feedback package ships with modelward
            return arm_performance(store, model, since, now, metric=metric)
        report = live_performance(store, model, since=since, until=now)
        out: dict[str, ArmPerformance] = {}
        for arm in ("baseline", "canary"):
            groups = [g for g in report.groups if g.arm == arm]
            if groups:
                g = max(groups, key=lambda g: g.n_used)
                out[arm] = ArmPerformance(arm, g.n_used, metric, g.value(metric))
        return out

    def act(self, dep: Deployment, decision: CanaryDecision, now: float) -> int:
        """Carry ``decision`` out; returns the deployment revision it leaves."""
        plan = dep.spec.canary
        if plan is None:
            raise ValueError(f"{dep.model} is not running a canary")
        model, reason = dep.model, "; ".join(decision.reasons)
        seen = (dep.revision, decision.signature)
        # A hold repeats every tick (every 5 s in a server): logged at INFO when its outcome changes.
        repeat = decision.action == "hold" and self._last_hold.get(model) == seen
        log.log(
            logging.DEBUG if repeat else logging.INFO,
            "canary %s v%s: %s (%s)",
            model,
            plan.version,
            decision.action,
            reason,
        )
        extra = {"decision": decision.to_dict()}
        deployments = self.registry.deployments
        if decision.action == "hold":
            if not repeat:
                payload = {"revision": dep.revision, "reason": reason, **extra}
                self.registry.audit.append("canary_check", model, payload, actor=self.actor)
                self._last_hold[model] = seen
            return dep.revision
        self._last_hold.pop(model, None)
        if decision.action == "advance":
            nxt = replace(plan, step=plan.step + 1, step_started_at=now, reason=None)
            stored = deployments.put(
                dep.spec.with_canary(nxt),
                reason=reason,
                expected_revision=dep.revision,
                action="canary_advance",
                actor=self.actor,
                extra=extra,
            )
            return stored.revision
        if decision.action == "rollback":
            return self._rollback(dep, plan, decision, reason, extra)
        return self._promote(dep, plan, reason, extra)

    def _rollback(
        self, dep: Deployment, plan: CanaryPlan, decision: CanaryDecision, reason: str, extra: dict[str, Any]
    ) -> int:
        rolled = replace(plan, state="rolled_back", reason=reason)
        stored = self.registry.deployments.put(
            dep.spec.with_canary(rolled),
            reason=reason,
            expected_revision=dep.revision,
            action="canary_rollback",
            actor=self.actor,
            extra=extra,
        )
        if self.alert is not None:
            failed = [c for c in decision.checks if c.status == "fail"]
            value = failed[0].value if failed else None
            message = f"canary {dep.model}:{plan.version} rolled back at {plan.percent:g}%: {reason}"
            try:
                self.alert(
                    "canary_rollback",
                    dep.model,
                    f"{dep.model}:{plan.version}",
                    message,
                    severity="critical",
                    value=value,
                )
            except Exception:
                log.exception("canary %s: the rollback alert could not be sent", dep.model)
        return stored.revision

    def _promote(self, dep: Deployment, plan: CanaryPlan, reason: str, extra: dict[str, Any]) -> int:
        deployments = self.registry.deployments
        current = deployments.get(dep.model)
        found = current.revision if current is not None else None
        if found != dep.revision:  # checked before the alias moves, not only at the write
            raise StaleDeployment(dep.model, dep.revision, found)
        alias = plan.baseline[1:] if plan.baseline.startswith("@") else DEFAULT_ALIAS
        why = f"canary passed every step ({', '.join(f'{s:g}%' for s in plan.steps)}): {reason}"
        previous = self.registry.model(dep.model).aliases.get(alias)
        # The gates run here too (the model's stored policy; its holdout when it names one). A version
        # that fails them is rolled back like a failing step, and the refusal is in the audit chain.
        done = promote_gated(self.registry, dep.model, plan.version, alias, reason=why)
        if done.refused:
            refusal = done.refusal()
            refused = CanaryDecision("rollback", [refusal], step=plan.step, percent=plan.percent)
            gated = {**extra, "validation": done.validation.summary()}
            return self._rollback(dep, plan, refused, refusal, gated)
        spec = dep.spec
        shadow = spec.shadow if spec.shadow not in (plan.version, f"@{alias}") else None
        single = DeploymentSpec.single(
            dep.model, f"@{alias}", key=spec.key, salt=spec.salt, shadow=shadow, shadow_rate=spec.shadow_rate
        )
        promoted = {"alias": alias, "from": previous, "to": plan.version}
        canary = replace(plan, state="promoted", reason=why).to_dict()
        stored = deployments.put(
            single,
            reason=why,
            expected_revision=dep.revision,
            action="canary_promote",
            actor=self.actor,
            extra={**extra, "promoted": promoted, "canary": canary},
        )
        return stored.revision


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
) -> Controller:
    """The controller ``modelward serve`` and ``modelward controller`` run: the canary task, alerts
    through the :class:`~modelward.monitoring.alerts.AlertCenter` of the alerts file
    (``MODELWARD_ALERTS_FILE``; the log notifier by default), and the drift and performance monitor
    (:class:`~modelward.control.monitor.MonitorTask`) unless ``monitor=False``, over ``models`` (all
    registered when None), keeping the given drift and performance gauges fresh; and the prediction
    log's retention (:class:`~modelward.monitoring.log_retention.RetentionTask`) when
    ``MODELWARD_LOG_RETENTION`` is set, its deleted counts and the log's size reported to
    ``log_metrics`` (a :class:`~modelward.monitoring.metrics.ServingMetrics`) when given; the
    lease and canary gauges to ``controller_gauges`` (a ``ControllerGauges``) when given."""
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
    # -- prediction log retention --
    retention = _retention_task(registry, settings, log_metrics)
    if retention is not None:
        tasks.append(retention)
    return Controller(
        registry,
        holder=holder,
        interval=interval,
        lease_ttl=lease_ttl,
        tasks=tasks,
        alert=center.event,
        gauges=controller_gauges,
    )


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
