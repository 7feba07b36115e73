"""Automatic rollout on a real registry and store: a new version that passes its gates is canaried and
promoted by the controller (its clock driven); a worse one is rejected by the gates and never served;
two controllers take a version up once."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelward.cli import main
from modelward.control.controller import Controller
from modelward.control.rollout import RolloutTask
from modelward.control.rollout_records import Rollouts
from modelward.governance import VersionReports
from modelward.monitoring.alerts import AlertCenter
from modelward.registry import Registry, register_model
from modelward.routing import DeploymentSpec
from modelward.store import Store
from tests.conftest import make_pipeline

from .canary_fixtures import log_rows
from .test_controller import Alerts

STEP = 60.0
T0 = 1_700_000_000.0


@pytest.fixture
def served(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame, tmp_path: Path) -> Registry:
    """churn:1 (logistic regression) champion, a rollout policy with a holdout: new versions canary."""
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    registry.promote("churn", 1, reason="first champion")
    holdout = tmp_path / "holdout.parquet"
    churn_frame.sample(600, random_state=3).to_parquet(holdout)
    policy = (
        f"holdout: {holdout}\n"
        "rollout: {strategy: canary, steps: [50, 100], step_duration: 60s, min_requests: 50}\n"
    )
    VersionReports(registry.store).set_policy("churn", policy, actor="tester")
    return registry


def _rollout(registry: Registry, version: str) -> Any:
    row = Rollouts(registry.store).get("churn", version)
    assert row is not None
    return row


def test_a_new_version_that_passes_its_gates_is_canaried_then_promoted(
    served: Registry, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    registry = served
    register_model(registry, churn_models["forest"], "churn", train_data=churn_frame, target="churn")
    # The new version was mirrored in shadow: its canary keeps the routing but not a shadow of itself.
    registry.deployments.put(DeploymentSpec.single("churn", "@champion", key="customer", shadow="2"))
    alerts = Alerts()
    controller = Controller(registry, holder="a", lease_ttl=STEP * 10, alert=alerts)
    controller.tasks.append(RolloutTask(registry, alert=alerts, actor="controller:a", holder="a"))

    (started,) = controller.tick(T0).results["rollout"]
    assert started["status"] == "canary", started
    dep = registry.deployments.get("churn")
    assert dep is not None and dep.spec.canary is not None
    assert (dep.spec.canary.version, dep.spec.canary.percent) == ("2", 50)
    assert (dep.spec.key, dep.spec.shadow) == ("customer", None)
    assert _rollout(registry, "2").detail["validation"]["verdict"] == "pass"

    begun = T0
    for step, pct in enumerate((50, 100)):
        log_rows(registry, "canary", "2", 400 * pct // 100 + 60, begun, begun + STEP, seed=step)
        if pct < 100:
            log_rows(registry, "baseline", "1", 400, begun, begun + STEP, seed=100 + step)
        begun += STEP + 1
        controller.tick(begun)

    assert registry.resolve("churn@champion").version == "2"
    row = _rollout(registry, "2")
    assert row.status == "promoted", row.detail
    actions = [e.action for e in registry.audit.events(subject="churn")]
    for action in ("rollout_claimed", "rollout_canary", "canary_promote", "rollout_promoted"):
        assert action in actions
    assert [a[0] for a, _ in alerts.calls] == ["rollout_started", "rollout_promoted"]
    # Nothing left to take up: the next ticks do nothing.
    assert controller.tick(begun + 1).results["rollout"] == []


def test_a_worse_version_is_rejected_by_the_gates_and_never_receives_traffic(
    served: Registry, churn_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.dummy import DummyClassifier

    registry = served
    x, y = churn_frame.drop(columns=["churn"]), churn_frame["churn"]
    worse = make_pipeline(DummyClassifier(strategy="prior")).fit(x, y)  # type: ignore[attr-defined]
    register_model(registry, worse, "churn", train_data=churn_frame, target="churn")

    # The controller `modelward controller` (and `serve`) runs, with the alerts file's notifiers.
    assert main(["controller", "--once", "--no-monitor"]) == 0
    said = capsys.readouterr().out
    assert "churn:2: rollout rejected" in said and "regression" in said
    assert registry.deployments.get("churn") is None  # no canary, no arm: it serves @champion only
    assert registry.resolve("churn@champion").version == "1"
    row = _rollout(registry, "2")
    assert row.status == "rejected" and row.detail["validation"]["verdict"] == "fail"
    (event,) = registry.audit.events(subject="churn:2", action="rollout_rejected")
    assert "receives no traffic" in event.payload["reason"]
    (notified,) = AlertCenter(registry.store, ()).history(kinds=["fire"])
    assert (notified.rule, notified.subject, notified.severity) == ("rollout_rejected", "churn:2", "warning")
    assert "regression" in notified.message
    VersionReports(registry.store).set_policy("ghost", "rollout: canary\n", actor="tester")
    task = RolloutTask(registry, actor="controller:a", holder="a")
    assert task.run(T0 + 5) == []  # rejected once, not retried; a policy without its model passed over

    # `modelward rollout status` shows it, for people and for scripts.
    assert main(["rollout", "status", "churn", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["champion"] == "1" and shown["rollout"]["steps"] == [50, 100]
    assert [(r["version"], r["status"]) for r in shown["rollouts"]] == [("2", "rejected")]
    assert main(["rollout", "status", "churn"]) == 0
    text = capsys.readouterr().out
    assert "rejected" in text and "rollout: canary, steps 50,100%" in text


def test_two_controllers_take_a_new_version_up_once(
    served: Registry, settings: Any, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    register_model(served, churn_models["forest"], "churn", train_data=churn_frame, target="churn")
    other = Registry.from_settings(settings).open()
    try:
        # Both tasks run at once, outside the lease: only the rollouts row keeps them apart.
        tasks = [RolloutTask(r, actor=f"controller:{h}", holder=h) for r, h in ((served, "a"), (other, "b"))]
        results: list[list[dict[str, Any]]] = [[], []]
        barrier = threading.Barrier(2)

        def run(i: int) -> None:
            barrier.wait()
            results[i] = tasks[i].run(T0)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    started = [o for r in results for o in r if o.get("status") == "canary"]
    assert len(started) == 1, results
    assert len(served.audit.events(subject="churn:2", action="rollout_claimed")) == 1
    assert len(served.audit.events(subject="churn", action="rollout_canary")) == 1


def test_a_rollout_row_is_claimed_by_one_store_client(store_url: str) -> None:
    stores = [Store(store_url).open() for _ in range(2)]
    try:
        stores[0].migrate()
        claims = [
            Rollouts(s).claim("m", "3", holder=f"h{i}", now=T0, detail={}) for i, s in enumerate(stores)
        ]
        assert claims == [True, False]
        rollouts = Rollouts(stores[1])
        assert rollouts.move("m", "3", expected="validating", status="canary", detail={"a": 1}, now=T0 + 1)
        assert not rollouts.move("m", "3", expected="validating", status="rejected", detail={}, now=T0 + 2)
        row = rollouts.get("m", "3")
        assert row is not None and (row.status, row.holder, row.detail) == ("canary", "h0", {"a": 1})
    finally:
        for s in stores:
            s.close()


def test_a_version_whose_registration_has_not_pinned_it_yet_waits_then_an_unpinned_one_is_rejected(
    served: Registry, churn_models: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow lists a version as soon as registration creates it; its pins (and register event) come
    moments later. The controller must not reject it as unpinned in between."""
    import mlflow
    import mlflow.sklearn

    from modelward.control import rollout

    registry = served
    with registry.mlflow_context(), mlflow.start_run() as run:
        mlflow.sklearn.log_model(churn_models["logreg"], name="model", serialization_format="skops")
        mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn")  # version 2, no pins here yet
    task = RolloutTask(registry, actor="controller:a", holder="a")
    assert task.run(T0) == []
    assert Rollouts(registry.store).get("churn", "2") is None  # not claimed: it may be mid-registration

    monkeypatch.setattr(rollout, "REGISTRATION_GRACE_SECONDS", 0.0)  # long past any registration
    registry.audit.append("note", "churn", {}, actor="tester")  # a change: the task looks again
    (ended,) = task.run(T0 + 1)
    assert ended["status"] == "rejected", ended
    row = _rollout(registry, "2")
    assert row.status == "rejected"
    (event,) = registry.audit.events(subject="churn:2", action="rollout_rejected")
    assert "holds no sha256 pins" in event.payload["reason"]
