"""The controller and its tasks: canary analysis (advance, hold, promote, roll back) under a store
lease, so exactly one process acts (docs/routing.md, "Controller")."""

from __future__ import annotations

from modelward.control.canary import CanaryDecision, Check, decide
from modelward.control.controller import CanaryTask, Controller, ControllerTask, TickReport
from modelward.control.targets import check_targets, resolve_targets, same_version_problems

__all__ = [
    "CanaryDecision",
    "CanaryTask",
    "Check",
    "Controller",
    "ControllerTask",
    "TickReport",
    "check_targets",
    "decide",
    "resolve_targets",
    "same_version_problems",
]
