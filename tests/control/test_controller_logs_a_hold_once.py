"""A canary that holds for the same reason is logged once at INFO, not every tick (every 5 s in a
server); the ticks that repeat it are DEBUG. A new outcome (not enough data) is logged again."""

from __future__ import annotations

import logging

import pytest

from modelward.control.controller import Controller
from modelward.registry import Registry

from .canary_fixtures import churn_registry
from .test_controller import STEP, T0, start_canary

__all__ = ["churn_registry"]  # a fixture: imported so that pytest finds it


def test_a_hold_is_logged_at_info_once_per_outcome(
    churn_registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    start_canary(churn_registry)
    controller = Controller(churn_registry, holder="a", lease_ttl=STEP * 10)
    with caplog.at_level(logging.DEBUG, logger="modelward.controller"):
        for t in (1, 2, 3, 4, 5, STEP + 1, STEP + 2):
            assert controller.tick(T0 + t).results["canary"][0]["action"] == "hold"
    holds = [r for r in caplog.records if r.getMessage().startswith("canary churn v2: hold")]
    assert len(holds) == 7
    info = [r.getMessage() for r in holds if r.levelno == logging.INFO]
    assert len(info) == 2, info
    assert "left in the step" in info[0] and "not enough data" in info[1]
