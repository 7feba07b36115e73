"""Everything ``modelward deploy status`` shows about one model's deployment, as plain data.

The spec and its revision; each arm's weight and the version its target resolves to now; a canary's
step, state, time left in the step and the controller's last decisions with their reasons (read back
from the audit chain, where the controller records them); per-arm statistics over a window of the
prediction log; the shadow's agreement with the primary; and who holds the controller lease.
"""

from __future__ import annotations

import time
from typing import Any

from modelward.control.controller import CANARY_ACTIONS, LEASE_NAME
from modelward.control.targets import resolve_target
from modelward.errors import NotFound
from modelward.monitoring.window_stats import shadow_agreement, window_stats
from modelward.registry.registry import Registry
from modelward.routing.spec import DeploymentSpec
from modelward.store.lease import Lease

__all__ = ["deployment_status", "last_decisions"]


def last_decisions(registry: Registry, model: str, *, limit: int = 5) -> list[dict[str, Any]]:
    """The controller's newest ``limit`` canary decisions for ``model``, newest first."""
    out: list[dict[str, Any]] = []
    for event in registry.audit.events(subject=model, newest_first=True, limit=500):
        if event.subject != model or event.action not in CANARY_ACTIONS:
            continue
        decision = event.payload.get("decision") or {}
        out.append(
            {
                "ts": event.ts,
                "event": event.action,
                "action": decision.get("action"),
                "reasons": decision.get("reasons") or [],
                "step": decision.get("step"),
                "percent": decision.get("percent"),
                "checks": decision.get("checks") or [],
                "actor": event.actor,
            }
        )
        if len(out) >= limit:
            break
    return out


def _resolved(registry: Registry, model: str, target: str) -> dict[str, Any]:
    try:
        return {"version": resolve_target(registry, model, target), "problem": None}
    except NotFound as exc:
        return {"version": None, "problem": str(exc)}


def deployment_status(
    registry: Registry, model: str, *, window: float = 3600.0, now: float | None = None, decisions: int = 5
) -> dict[str, Any]:
    """The status of ``model``'s deployment (a model without a spec serves ``@champion``)."""
    now = time.time() if now is None else now
    registry.model(model)  # ModelNotFound for a name the registry does not know
    dep = registry.deployments.get(model)
    spec = dep.spec if dep is not None else DeploymentSpec.single(model)
    total = sum(a.weight for a in spec.arms) or 1.0
    arms = [
        {
            "name": a.name,
            "target": a.target,
            "weight": a.weight,
            "percent": 100.0 * a.weight / total,
            **_resolved(registry, model, a.target),
        }
        for a in spec.arms
    ]
    shadow = None
    if spec.shadow is not None:
        shadow = {"target": spec.shadow, "rate": spec.shadow_rate, **_resolved(registry, model, spec.shadow)}
    canary = None
    if spec.canary is not None:
        plan = spec.canary
        ends = plan.step_started_at + plan.step_seconds if plan.step_started_at is not None else None
        canary = {
            **plan.to_dict(),
            "step_number": plan.step + 1,
            "percent": plan.percent,
            "step_ends_at": ends,
            "seconds_left": max(0.0, ends - now) if ends is not None and plan.state == "running" else None,
        }
    since = now - window
    lease = Lease(registry.store, LEASE_NAME, holder="status").info()
    return {
        "model": model,
        "deployed": dep is not None,
        "revision": dep.revision if dep is not None else 0,
        "updated_at": dep.updated_at if dep is not None else None,
        "actor": dep.actor if dep is not None else None,
        "reason": dep.reason if dep is not None else None,
        "summary": spec.describe(),
        "spec": spec.to_dict(),
        "arms": arms,
        "shadow": shadow,
        "canary": canary,
        "decisions": last_decisions(registry, model, limit=decisions),
        "window": {"since": since, "until": now, "seconds": window},
        "stats": [w.to_dict() for w in window_stats(registry.store, model, since, now)],
        "shadow_agreement": shadow_agreement(registry.store, model, since, now).to_dict(),
        "controller": None
        if lease is None
        else {"holder": lease.holder, "expires_at": lease.expires_at, "active": lease.expires_at > now},
    }
