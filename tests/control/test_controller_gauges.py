"""The controller's gauges on a real store: the lease holder and the other candidate each report
whether they hold it and when their attempt reached the store, and the canary's share and rollback."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry

from modelward.control.controller import Controller
from modelward.monitoring.controller_gauges import ControllerGauges
from modelward.registry import Registry
from modelward.routing import DeploymentSpec

from .canary_fixtures import churn_registry

__all__ = ["churn_registry"]  # a fixture: imported so that pytest finds it

T0 = 1_700_000_000.0


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_the_holder_reports_one_and_the_other_candidate_zero_both_with_their_check_time(
    churn_registry: Registry,
) -> None:
    mine, theirs = CollectorRegistry(), CollectorRegistry()
    a = Controller(churn_registry, holder="a", lease_ttl=30, gauges=ControllerGauges(mine))
    b = Controller(churn_registry, holder="b", lease_ttl=30, gauges=ControllerGauges(theirs))
    assert a.tick(T0).acting and not b.tick(T0 + 1).acting
    assert value(mine, "modelward_controller_lease_held") == 1
    assert value(theirs, "modelward_controller_lease_held") == 0
    assert value(mine, "modelward_controller_lease_checked_timestamp_seconds") == T0
    assert value(theirs, "modelward_controller_lease_checked_timestamp_seconds") == T0 + 1
    a.release()
    assert b.tick(T0 + 2).acting
    assert value(theirs, "modelward_controller_lease_held") == 1


def test_a_running_canary_reports_its_percent_and_a_rolled_back_one_zero_and_one(
    churn_registry: Registry,
) -> None:
    spec = DeploymentSpec.start_canary("churn", 2, steps=(5, 25, 50, 100), step_seconds=60)
    assert spec.canary is not None
    churn_registry.deployments.put(spec.with_canary(replace(spec.canary, step_started_at=T0)), reason="t")
    prom = CollectorRegistry()
    controller = Controller(churn_registry, holder="a", lease_ttl=600, gauges=ControllerGauges(prom))
    controller.tick(T0 + 1)
    assert value(prom, "modelward_canary_percent", model="churn", version="2") == 5
    assert value(prom, "modelward_canary_rolled_back", model="churn", version="2") == 0
    dep = churn_registry.deployments.get("churn")
    assert dep is not None and dep.spec.canary is not None
    rolled = dep.spec.with_canary(replace(dep.spec.canary, state="rolled_back"))
    churn_registry.deployments.put(rolled, reason="t")
    controller.tick(T0 + 2)
    assert value(prom, "modelward_canary_percent", model="churn", version="2") == 0
    assert value(prom, "modelward_canary_rolled_back", model="churn", version="2") == 1
