"""The controller and its tasks: canary analysis (advance, hold, promote, roll back) under a store
lease, so exactly one process acts (docs/routing.md, "Controller"); retraining from each model's
policy, automatic rollout of new versions and rollback on live performance (docs/loop.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelward._lazy import lazy_exports

if TYPE_CHECKING:
    from modelward.control.breach import BreachTask
    from modelward.control.canary import CanaryDecision, Check, decide
    from modelward.control.controller import CanaryTask, Controller, ControllerTask, TickReport
    from modelward.control.retrain import Retrainer, RetrainTask
    from modelward.control.rollout import RolloutTask
    from modelward.control.targets import check_targets, resolve_targets, same_version_problems

__all__ = [
    "BreachTask",
    "CanaryDecision",
    "CanaryTask",
    "Check",
    "Controller",
    "ControllerTask",
    "RetrainTask",
    "Retrainer",
    "RolloutTask",
    "TickReport",
    "check_targets",
    "decide",
    "resolve_targets",
    "same_version_problems",
]

# Imported when first read (PEP 562): a process that needs one module of this package does not
# pay for the others.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "breach": ("BreachTask",),
        "canary": ("CanaryDecision", "Check", "decide"),
        "controller": ("CanaryTask", "Controller", "ControllerTask", "TickReport"),
        "rollout": ("RolloutTask",),
        "retrain": ("RetrainTask", "Retrainer"),
        "targets": ("check_targets", "resolve_targets", "same_version_problems"),
    },
)
