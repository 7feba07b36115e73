"""The dashboard's admin actions, through the functions the admin REST routes and the CLI call:
gated promotion (:func:`~modelward.governance.promotion.promote_gated`), the registry's rollback,
and deployment revisions checked by :func:`~modelward.control.targets.check_targets` and stored
conditionally (the revision the page showed, so a change made meanwhile is refused, not lost).

Each action is described first (:func:`describe`, the confirmation step), then done (:func:`perform`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Literal

from modelward.control.targets import check_targets
from modelward.errors import ConfigError
from modelward.governance.promotion import promote_gated
from modelward.registry import DEFAULT_ALIAS, Registry
from modelward.routing.spec import DeploymentSpec

__all__ = ["ACTIONS", "Action", "ActionRequest", "describe", "parse_weights", "perform"]

Action = Literal["promote", "rollback", "weights", "pause", "resume"]
ACTIONS: tuple[Action, ...] = ("promote", "rollback", "weights", "pause", "resume")


@dataclass(frozen=True, slots=True)
class ActionRequest:
    model: str
    action: Action
    version: str = ""
    alias: str = DEFAULT_ALIAS
    weights: tuple[tuple[str, float], ...] = ()
    revision: int = 0
    reason: str = ""


def describe(r: ActionRequest) -> str:
    if r.action == "promote":
        return f"Promote {r.model}:{r.version} to @{r.alias} (its promotion gates run first)."
    if r.action == "rollback":
        return f"Roll @{r.alias} of {r.model} back to the version it held before."
    if r.action == "weights":
        shares = ", ".join(f"{arm} {w:g}" for arm, w in r.weights)
        return f"Set the traffic weights of {r.model} (revision {r.revision}) to {shares}."
    verb = "Pause" if r.action == "pause" else "Resume"
    return f"{verb} the canary of {r.model} (revision {r.revision})."


def _spec(registry: Registry, r: ActionRequest) -> DeploymentSpec:
    dep = registry.deployments.get(r.model)
    if dep is None:
        raise ConfigError(f"{r.model} has no deployment spec: it serves @{DEFAULT_ALIAS}")
    spec = dep.spec
    if r.action == "weights":
        if spec.strategy != "ab":
            raise ConfigError("weights are set on an A/B deployment (a canary sets its own)")
        given = dict(r.weights)
        unknown = sorted(set(given) - {a.name for a in spec.arms})
        if unknown:
            raise ConfigError(f"unknown arm(s): {', '.join(unknown)}")
        arms = tuple(replace(a, weight=given.get(a.name, a.weight)) for a in spec.arms)
        return replace(spec, arms=arms)
    plan = spec.canary
    if plan is None:
        raise ConfigError(f"{r.model} is not running a canary")
    if r.action == "pause":
        if plan.state != "running":
            raise ConfigError(f"the canary is {plan.state.replace('_', ' ')}, not running")
        return spec.with_canary(replace(plan, state="paused"))
    if plan.state != "paused":
        raise ConfigError(f"the canary is {plan.state.replace('_', ' ')}, not paused")
    # The step starts over: its full duration of evidence, not what was left when it was paused.
    return spec.with_canary(replace(plan, state="running", step_started_at=time.time()))


def perform(registry: Registry, r: ActionRequest) -> str:
    """Do ``r``; the sentence to show. ConfigError, NotFound or StaleDeployment when refused."""
    reason = r.reason or f"from the dashboard: {r.action}"
    if r.action == "promote":
        done = promote_gated(registry, r.model, r.version, r.alias, reason=reason)
        if done.info is None:
            raise ConfigError(done.refusal())
        return f"{r.model}:{done.info.version} is now @{r.alias}"
    if r.action == "rollback":
        info = registry.rollback(r.model, r.alias, reason=reason)
        return f"@{r.alias} of {r.model} is back on version {info.version}"
    spec = _spec(registry, r)
    check_targets(registry, spec)
    stored = registry.deployments.put(spec, reason=reason, expected_revision=r.revision, action="deploy")
    return f"{r.model}: revision {stored.revision} stored ({stored.spec.describe()})"


def parse_weights(text: str) -> tuple[tuple[str, float], ...]:
    """``"champion=70, challenger=30"`` as pairs; ConfigError naming what is wrong."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        arm, _, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            raise ConfigError(f"cannot read {part!r} as arm=weight") from None
        out.append((arm.strip(), weight))
    if not out:
        raise ConfigError("give the weights as arm=weight, separated by commas")
    return tuple(out)
