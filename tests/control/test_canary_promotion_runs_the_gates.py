"""The controller's final canary promotion runs the model's promotion gates: a version that passes
every canary step but fails a gate is rolled back, and the refusal is in the audit chain."""

from __future__ import annotations

from modelward.control.controller import Controller
from modelward.governance import VersionReports
from modelward.registry import Registry

from .canary_fixtures import churn_registry, log_rows
from .test_controller import STEP, T0, canary_plan, start_canary

__all__ = ["churn_registry"]  # a fixture: imported so that pytest finds it


def test_a_canary_that_fails_its_gates_at_the_end_is_rolled_back_not_promoted(
    churn_registry: Registry,
) -> None:
    registry = churn_registry
    # The registration calibration of the churn forest is far above this ceiling.
    policy = "regression: null\ncalibration:\n  max_ece: 0.000001\n"
    VersionReports(registry.store).set_policy("churn", policy, actor="tester")
    start_canary(registry)
    controller = Controller(registry, holder="a", lease_ttl=STEP * 10, interval=5.0)
    started = T0
    outcome: dict = {}
    for step, pct in enumerate((5, 25, 50, 100)):
        log_rows(registry, "canary", "2", 400 * pct // 100 + 60, started, started + STEP, seed=step)
        if pct < 100:
            log_rows(registry, "baseline", "1", 400, started, started + STEP, seed=100 + step)
        now = started + STEP + 1
        (outcome,) = controller.tick(now).results["canary"]
        started = now
    assert outcome["action"] == "promote"  # what the canary checks decided; the gates overruled it
    assert registry.resolve("churn@champion").version == "1"
    plan = canary_plan(registry)
    assert plan.state == "rolled_back"
    assert "calibration" in plan.reason
    (refused,) = registry.audit.events(subject="churn:2", action="promote_refused")
    assert refused.payload["validation"]["verdict"] == "fail"
    (event,) = registry.audit.events(subject="churn", action="canary_rollback")
    gates = {g["name"]: g["verdict"] for g in event.payload["validation"]["gates"]}
    assert gates["calibration"] == "fail"
    assert gates["integrity"] == "pass"
