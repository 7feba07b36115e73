"""The canary task the controller runs each tick: for every deployment with a running canary, gather
the step's windows and live performance, :func:`~modelward.control.canary.decide`, and act on the
decision (hold, advance a step, roll back, or promote through the promotion gates)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from modelward.control.canary import CanaryDecision, decide
from modelward.monitoring.arm_performance import COUNTED_METRICS, ArmPerformance, arm_performance
from modelward.monitoring.window_stats import ArmWindow, window_stats
from modelward.registry.deployments import Deployment, StaleDeployment
from modelward.registry.registry import DEFAULT_ALIAS, Registry
from modelward.routing.spec import CanaryPlan, DeploymentSpec

__all__ = ["CANARY_ACTIONS", "AlertSink", "CanaryTask"]

log = logging.getLogger("modelward.controller")

CANARY_ACTIONS = ("canary_check", "canary_advance", "canary_promote", "canary_rollback")
"""Audit actions of the canary task; ``modelward deploy status`` shows the newest ones."""

AlertSink = Callable[..., object]
"""Called as ``alert(rule, model, subject, message, severity=..., value=...)`` (AlertCenter.event)."""


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
        # Imported here: the gates load models (the runtime); `deploy status` reads CANARY_ACTIONS only.
        from modelward.governance.promotion import promote_gated

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
