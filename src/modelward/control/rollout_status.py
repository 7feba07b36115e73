"""What ``modelward rollout status NAME`` shows: the model's rollout and live-floor policy, the
rollout of each new version (newest first), the live floor's alert now, and the rollbacks on live
performance in the audit chain."""

from __future__ import annotations

from typing import Any

from modelward.control.breach import RULE
from modelward.control.rollout_records import Rollouts
from modelward.governance.audit import AuditLog
from modelward.registry.registry import DEFAULT_ALIAS, Registry

__all__ = ["LIVE_ACTIONS", "rollout_status"]

LIVE_ACTIONS = ("live_rollback", "live_rollback_impossible")


def rollout_status(registry: Registry, model: str, *, limit: int = 20) -> dict[str, Any]:
    """``model``'s rollouts, policy, live-floor alerts and live rollbacks, JSON-friendly."""
    from modelward.governance.gates import effective_policy
    from modelward.monitoring.alerts import AlertCenter

    champion = registry.model(model).aliases.get(DEFAULT_ALIAS)  # ModelNotFound for a typo
    policy, source = effective_policy(registry, model)
    center = AlertCenter(registry.store, ())
    floors = [a.to_dict() for a in center.active(model) if a.rule == RULE]
    audit = AuditLog(registry.store)
    rollbacks = [
        e.to_dict()
        for action in LIVE_ACTIONS
        for e in audit.events(subject=model, action=action, newest_first=True, limit=limit)
    ]
    rollbacks.sort(key=lambda e: e["seq"], reverse=True)
    return {
        "model": model,
        "champion": champion,
        "policy_source": source,
        "rollout": None if policy.rollout is None else policy.rollout.model_dump(exclude_none=True),
        "live": None if policy.live is None else policy.live.model_dump(),
        "rollouts": [r.to_dict() for r in Rollouts(registry.store).of_model(model)[:limit]],
        "live_alerts": floors,
        "live_rollbacks": rollbacks[:limit],
    }
