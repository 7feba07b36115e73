"""The closed loop's controller tasks as ``modelward serve`` and ``modelward controller`` run them:
automatic rollout of new versions (:class:`~modelward.control.rollout.RolloutTask`) and rollback
on live performance (:class:`~modelward.control.breach.BreachTask`). Both act only on models whose
stored policy asks for it (``rollout:``, ``live:``), so they cost a query per tick elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelward.control.breach import BreachTask
from modelward.control.rollout import RolloutTask
from modelward.monitoring.alerts import AlertCenter
from modelward.registry.registry import Registry

if TYPE_CHECKING:
    from modelward.config import Settings

__all__ = ["rollout_tasks"]


def rollout_tasks(
    registry: Registry, settings: Settings, center: AlertCenter, holder: str, controller_gauges: Any = None
) -> list[Any]:
    """The rollout and live-floor tasks, notifying through ``center``; their metrics go to the
    Prometheus registry of ``controller_gauges`` (a ``ControllerGauges``) when given. The live floor
    is judged every ``settings.monitor_interval`` seconds, as the monitor's rules are."""
    metrics = None
    if controller_gauges is not None:
        from modelward.monitoring.rollout_metrics import RolloutMetrics

        metrics = RolloutMetrics(controller_gauges.registry)
    actor = f"controller:{holder}"
    return [
        RolloutTask(registry, alert=center.event, actor=actor, holder=holder, metrics=metrics),
        BreachTask(registry, center, interval=settings.monitor_interval, actor=actor, metrics=metrics),
    ]
