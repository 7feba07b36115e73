"""The controller on a real store and registry: a canary walked to champion, rolled back, one actor."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from modelward.control.controller import LEASE_NAME, Controller
from modelward.registry import Registry
from modelward.routing import CanaryRules, DeploymentSpec
from modelward.store import Lease

from .canary_fixtures import churn_registry, log_rows

__all__ = ["churn_registry"]  # a fixture: imported so that pytest finds it

STEP = 60.0
T0 = 1_700_000_000.0


def start_canary(registry: Registry, started: float = T0, **rules: Any) -> int:
    spec = DeploymentSpec.start_canary(
        "churn", 2, steps=(5, 25, 50, 100), step_seconds=STEP, rules=CanaryRules(**rules)
    )
    assert spec.canary is not None
    spec = spec.with_canary(replace(spec.canary, step_started_at=started))
    return registry.deployments.put(spec, reason="try v2").revision


class Alerts:
    """An alert sink that records its calls (AlertCenter.event's signature)."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kw: Any) -> None:
        self.calls.append((args, kw))


def canary_plan(registry: Registry) -> Any:
    dep = registry.deployments.get("churn")
    assert dep is not None
    return dep.spec.canary


def test_a_healthy_canary_walks_every_step_and_ends_as_champion(churn_registry: Registry) -> None:
    registry = churn_registry
    start_canary(registry)
    controller = Controller(registry, holder="a", lease_ttl=STEP * 10, interval=5.0)
    started = T0
    for step, pct in enumerate((5, 25, 50, 100)):
        # Mid-step the controller holds, whatever the data says.
        assert controller.tick(started + STEP / 2).results["canary"][0]["action"] == "hold"
        n_canary = 400 * pct // 100 + 60
        log_rows(registry, "canary", "2", n_canary, started, started + STEP, seed=step)
        if pct < 100:  # at 100 % the baseline gets nothing; the controller looks at its last step
            log_rows(registry, "baseline", "1", 400, started, started + STEP, seed=100 + step)
        now = started + STEP + 1
        report = controller.tick(now)
        assert report.acting
        (outcome,) = report.results["canary"]
        assert outcome["action"] == ("promote" if pct == 100 else "advance"), outcome["reasons"]
        started = now
        if pct < 100:
            plan = canary_plan(registry)
            assert (plan.step, plan.step_started_at) == (step + 1, now)

    assert registry.resolve("churn@champion").version == "2"
    dep = registry.deployments.get("churn")
    assert dep is not None
    assert dep.spec.strategy == "single" and dep.spec.arms[0].target == "@champion"
    actions = [e.action for e in registry.audit.events(subject="churn")]
    assert actions.count("canary_advance") == 3
    assert actions[-2:] == ["promote", "canary_promote"]
    (promoted,) = registry.audit.events(subject="churn", action="canary_promote")
    assert promoted.payload["promoted"] == {"alias": "champion", "from": "1", "to": "2"}
    assert promoted.payload["decision"]["action"] == "promote"
    assert promoted.payload["canary"]["state"] == "promoted"
    # Nothing left to do: the next tick finds no running canary.
    assert controller.tick(started + 10 * STEP).results["canary"] == []


def test_a_failing_canary_is_rolled_back_with_an_audit_event_and_an_alert(churn_registry: Registry) -> None:
    registry = churn_registry
    start_canary(registry)
    alerts = Alerts()
    controller = Controller(registry, holder="a", lease_ttl=STEP * 10, alert=alerts)
    log_rows(registry, "baseline", "1", 950, T0, T0 + 10)
    log_rows(registry, "canary", "2", 50, T0, T0 + 10, fail=0.2, seed=1)

    report = controller.tick(T0 + 10)  # 10 s into a 60 s step

    (outcome,) = report.results["canary"]
    assert outcome["action"] == "rollback"
    plan = canary_plan(registry)
    assert plan.state == "rolled_back" and plan.percent == 0.0
    assert "error rate" in plan.reason
    dep = registry.deployments.get("churn")
    assert dep is not None and dep.spec.arm("canary").weight == 0.0
    (event,) = registry.audit.events(subject="churn", action="canary_rollback")
    assert "with 95% confidence" in event.payload["reason"]
    assert event.payload["decision"]["reasons"] == [plan.reason]
    assert event.payload["spec"]["canary"]["state"] == "rolled_back"
    ((args, kw),) = alerts.calls
    assert args[:3] == ("canary_rollback", "churn", "churn:2")
    assert "rolled back at 5%" in args[3] and "error rate" in args[3]
    assert kw["severity"] == "critical" and kw["value"] > 0.05
    assert registry.resolve("churn@champion").version == "1"  # the champion never moved
    assert controller.tick(T0 + 20).results["canary"] == []  # rolled back: left alone


def test_holds_are_audited_once_per_outcome_not_every_tick(churn_registry: Registry) -> None:
    registry = churn_registry
    start_canary(registry)
    controller = Controller(registry, holder="a", lease_ttl=STEP * 10)
    for t in range(1, 6):
        assert controller.tick(T0 + t).results["canary"][0]["action"] == "hold"
    checks = registry.audit.events(subject="churn", action="canary_check")
    assert len(checks) == 1
    assert "left in the step" in checks[0].payload["reason"]
    # Past the step without data: a new outcome (not enough data), audited once.
    controller.tick(T0 + STEP + 1)
    controller.tick(T0 + STEP + 2)
    checks = registry.audit.events(subject="churn", action="canary_check")
    assert len(checks) == 2
    assert "not enough data" in checks[1].payload["reason"]


def test_a_canary_that_cannot_be_evaluated_spares_the_others(churn_registry: Registry) -> None:
    registry = churn_registry
    start_canary(registry)
    # The store API does not check targets (the CLI and admin API do): a model MLflow does not know.
    registry.deployments.put(DeploymentSpec.start_canary("ghost", 2, step_seconds=STEP))
    report = Controller(registry, holder="a", lease_ttl=STEP * 10).tick(T0 + 1)
    outcomes = {o["model"]: o for o in report.results["canary"]}
    assert "model 'ghost' is not registered" in outcomes["ghost"]["error"]
    assert outcomes["churn"]["action"] == "hold"
    assert report.errors == {}


def test_only_the_lease_holder_acts_and_another_takes_over_when_it_stops(
    churn_registry: Registry, settings: Any
) -> None:
    first = churn_registry
    second = Registry.from_settings(settings).open()  # its own engine on the same store
    try:
        revision = start_canary(first)
        log_rows(first, "baseline", "1", 400, T0, T0 + STEP)
        log_rows(first, "canary", "2", 80, T0, T0 + STEP, seed=1)
        a = Controller(first, holder="a", interval=5, lease_ttl=15)
        b = Controller(second, holder="b", interval=5, lease_ttl=15)

        now = T0 + STEP + 1
        reports = [a.tick(now), b.tick(now), a.tick(now + 1), b.tick(now + 1)]

        assert [r.acting for r in reports] == [True, False, True, False]
        dep = first.deployments.get("churn")
        assert dep is not None and dep.revision == revision + 1  # advanced once, not twice
        assert Lease(first.store, LEASE_NAME, holder="x").info().holder == "a"  # type: ignore[union-attr]

        a.release()  # a stops cleanly
        assert b.tick(now + 2).acting
        assert not a.tick(now + 3).acting  # b holds it now
        # b crashes (stops renewing): a takes over once b's lease has expired.
        assert not a.tick(now + 2 + 14).acting
        assert a.tick(now + 2 + 16).acting
    finally:
        second.close()


def test_a_task_that_raises_does_not_stop_the_others(registry: Registry) -> None:
    class Broken:
        name = "broken"

        def run(self, now: float) -> None:
            raise RuntimeError("no luck")

    class Counter:
        name = "counter"

        def __init__(self) -> None:
            self.seen: list[float] = []

        def run(self, now: float) -> int:
            self.seen.append(now)
            return len(self.seen)

    counter = Counter()
    controller = Controller(registry, holder="a", tasks=(Broken(), counter), canary=False)
    report = controller.tick(T0)
    assert report.errors == {"broken": "RuntimeError: no luck"}
    assert report.results == {"counter": 1}
    assert counter.seen == [T0]


def test_the_blocking_loop_and_the_async_task_release_the_lease_when_they_end(registry: Registry) -> None:
    lease = Lease(registry.store, LEASE_NAME, holder="observer")
    controller = Controller(registry, holder="loop", interval=0.05, lease_ttl=5.0)
    ticks: list[bool] = []
    thread = threading.Thread(
        target=controller.run_forever, kwargs={"on_tick": lambda r: ticks.append(r.acting)}
    )
    thread.start()
    deadline = time.monotonic() + 10
    while len(ticks) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    controller.stop()
    thread.join(10)
    assert ticks[:2] == [True, True]
    assert lease.info() is None

    async def serve_briefly() -> str | None:
        other = Controller(registry, holder="server", interval=0.05, lease_ttl=5.0)
        task = asyncio.create_task(other.run_forever_async())
        await asyncio.sleep(0.3)
        info = lease.info()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return info.holder if info else None

    assert asyncio.run(serve_briefly()) == "server"
    assert lease.info() is None


def test_two_controllers_on_one_store_act_one_at_a_time_on_sqlite_and_postgresql(
    store_url: str, tmp_path: Any
) -> None:
    from modelward.store import Store

    class Count:
        name = "count"

        def __init__(self) -> None:
            self.runs = 0

        def run(self, now: float) -> int:
            self.runs += 1
            return self.runs

    registries = [
        Registry(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", store=Store(store_url)).open()
        for _ in range(2)
    ]
    try:
        counts = [Count(), Count()]
        a, b = (
            Controller(r, holder=h, interval=5, lease_ttl=15, tasks=(c,), canary=False)
            for r, h, c in zip(registries, "ab", counts, strict=True)
        )
        for t in range(5):  # both tick every interval; only the holder runs its tasks
            a.tick(T0 + 5 * t)
            b.tick(T0 + 5 * t + 1)
        assert [c.runs for c in counts] == [5, 0]
        a.release()
        assert b.tick(T0 + 30).acting and not a.tick(T0 + 31).acting
        assert [c.runs for c in counts] == [5, 1]
    finally:
        for r in registries:
            r.close()


def test_a_slow_tick_is_logged_with_its_duration_and_a_quick_one_is_not(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """Inside a server the controller shares the GIL with the request path: a slow tick says so."""

    class Slow:
        name = "slow"

        def __init__(self, seconds: float) -> None:
            self.seconds = seconds

        def run(self, now: float) -> None:
            time.sleep(self.seconds)

    caplog.set_level("INFO", logger="modelward.controller")
    quick = Controller(registry, holder="a", tasks=(Slow(0.0),), canary=False)
    assert quick._safe_tick() is not None
    assert "controller tick took" not in caplog.text
    quick.release()
    slow = Controller(registry, holder="a", tasks=(Slow(0.6),), canary=False)
    assert slow._safe_tick() is not None
    (line,) = [r.getMessage() for r in caplog.records if "controller tick took" in r.getMessage()]
    assert 0.6 <= float(line.split()[3]) < 5
