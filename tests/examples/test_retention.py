"""examples/retention: two weeks of a retail shop's retention checks replayed against a real server.

Daily RFM and tenure features built from a synthetic transaction log, an XGBoost model tracked in
MLflow and registered with ``modelward register --from-mlflow``, a CRM client scoring each day's
customers and sending their outcomes back, a retrained version promoted after the first week, then
a change in customer behaviour that takes its live AUC under the policy's 0.80 floor: the alert,
the automatic rollback to the previous champion, audited, and the restored champion above the floor.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from tests.conftest import EXAMPLES, _load_example
from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import Server, server_env, start_server

import modelward
from modelward.api import open_registry
from modelward.config import Settings
from modelward.monitoring.alert_config import load_alert_config
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.window_stats import window_stats
from modelward.registry.registry import Registry

# The set-up trains twice, registers and starts a server: minutes on a loaded machine.
pytestmark = pytest.mark.timeout(900)

EXAMPLE = EXAMPLES / "retention"
CUSTOMERS = 1400  # 200 checks a day

pytest.importorskip("xgboost")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _release(env: dict[str, str], home: Path, first: int, last: int) -> subprocess.CompletedProcess[str]:
    """train.py over days ``first``..``last``, registered and promoted to champion in its process."""
    return _run(
        env,
        str(EXAMPLE / "train.py"),
        *("--log", str(home / "transactions.parquet"), "--first", str(first), "--last", str(last)),
        *(
            "--out",
            str(home / f"model_uri{first}.txt"),
            "--reference",
            str(home / f"reference{first}.parquet"),
        ),
        *("--register", "retention", "--promote"),
    )


def _days(server: Server, first: int, last: int) -> list[dict[str, Any]]:
    log = ["--log", str(server.home / "transactions.parquet")]
    span = ["--first", str(first), "--last", str(last)]
    proc = _run(server.env, str(EXAMPLE / "crm.py"), server.url, *log, *span, "--json")
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _serves(server: Server, version: str) -> bool:
    """The server has switched to ``version`` (it follows an alias move at its next poll)."""
    with server.client() as client:
        ready = client.get("/ready").json()
    return bool(ready["models"]["retention"]["version"] == version)


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path) -> Iterator[dict[str, Any]]:
    """The README's story: the first model, a week of checks, the model retrained on them, a second
    week in which the controller rolls it back, and one more day on the restored champion."""
    home = tmp_path_factory.mktemp("retention-home")
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    # A day passes in seconds here: the breach is sustained for a second rather than the policy's
    # half hour, and the controller judges every second.
    policy = yaml.safe_load((EXAMPLE / "policy.yaml").read_text())
    policy["live"]["sustain"] = "1s"
    env = server_env(home)
    log = str(home / "transactions.parquet")
    _run(env, str(EXAMPLE / "shop.py"), "--customers", str(CUSTOMERS), "--out", log)
    printed = [_release(env, home, -27, 0).stdout]
    settings = Settings(home=home, actor="tester")
    modelward.set_policy("retention", yaml.safe_dump(policy), settings=settings)
    fast = {
        "MODELWARD_ALERTS_FILE": str(EXAMPLE / "alerts.yaml"),
        "MODELWARD_CONTROLLER_INTERVAL": "0.5",
        "MODELWARD_MONITOR_INTERVAL": "1",
        "MODELWARD_ACTOR": "server",
    }
    server = start_server(home, "retention", "--reload-interval", "0.5", env={**env, **fast}, timeout=300)
    try:
        week1 = _days(server, 1, 7)
        printed.append(_release(env, home, 1, 7).stdout)
        wait_until(lambda: _serves(server, "2"), timeout=120)
        week2 = _days(server, 8, 14)
        with open_registry(settings) as registry:
            wait_until(lambda: registry.model("retention").aliases.get("champion") == "1", timeout=120)
        wait_until(lambda: _serves(server, "1"), timeout=120)
        after = _days(server, 15, 15)
        yield {
            "home": home,
            "printed": printed,
            "days": week1 + week2,
            "after": after,
        }
    finally:
        server.stop()


@pytest.fixture
def registry(replay: dict[str, Any]) -> Iterator[Registry]:
    with open_registry(Settings(home=replay["home"], actor="tester")) as opened:
        yield opened


def test_daily_features_use_only_the_purchases_before_the_day() -> None:
    features = _load_example("retention_features", EXAMPLE / "features.py")
    log = pd.DataFrame(
        {
            "customer_id": [7, 7, 7, 7, 14, 3],
            "day": [-200, -50, -10, 5, -5, -1],
            "amount": [10.0, 20.0, 30.0, 999.0, 40.0, 50.0],
            "promo": [False, True, True, True, False, False],
        }
    )
    table = features.daily_features(log, 0).set_index("customer_id")  # type: ignore[attr-defined]

    assert list(table.index) == [7, 14]  # due on day 0: customer_id % 7 == 0; 3 is not
    seven = table.loc[7]
    assert (seven["recency_days"], seven["frequency_90d"], seven["tenure_days"]) == (10, 2, 200)
    assert seven["monetary_90d"] == pytest.approx(50.0)  # the purchase of day 5 is in the future
    assert seven["discount_share"] == pytest.approx(50.0 / 60.0, abs=1e-3)
    assert table.loc[14, "discount_share"] == 0.0
    with pytest.raises(ValueError, match="lacks column"):
        features.daily_features(log.drop(columns=["promo"]), 0)  # type: ignore[attr-defined]


def test_each_training_run_is_in_mlflow_with_params_metrics_and_the_feature_table(
    replay: dict[str, Any], registry: Registry
) -> None:
    from mlflow import MlflowClient

    assert "registered retention:1" in replay["printed"][0]
    assert "retention:2 is champion" in replay["printed"][1]
    client = MlflowClient(tracking_uri=f"sqlite:///{replay['home'] / 'mlflow.db'}")
    for version, span in (("1", "days -27..0"), ("2", "days 1..7")):
        info = registry.version("retention", version)
        assert (info.flavor, info.model_class) == ("xgboost", "xgboost.sklearn.XGBClassifier")
        run = client.get_run(info.run_id)
        assert run.data.params["max_depth"] == "3"
        assert (
            run.data.params["features"]
            == "recency_days,frequency_90d,monetary_90d,tenure_days,discount_share"
        )
        assert run.data.metrics["holdout_auc"] > 0.8
        (dataset,) = run.inputs.dataset_inputs
        assert dataset.dataset.name == f"features {span}"
        assert json.loads(dataset.dataset.profile)["num_rows"] > 1000
        assert [t.value for t in dataset.tags if t.key == "mlflow.data.context"] == ["training"]


def test_the_first_champion_scores_the_first_week_above_the_floor(replay: dict[str, Any]) -> None:
    week1 = replay["days"][:7]
    assert [d["day"] for d in week1] == list(range(1, 8))
    assert all(d["versions"] == {"1": d["checks"]} and d["checks"] > 150 for d in week1)
    assert week1[-1]["live_auc"]["1"] > 0.8
    assert sum(d["auc"] for d in week1) / 7 > 0.8


def test_changed_behaviour_takes_the_new_champion_under_its_floor_and_it_is_rolled_back(
    replay: dict[str, Any], registry: Registry
) -> None:
    week2 = replay["days"][7:]
    by_v2 = [d for d in week2 if set(d["versions"]) == {"2"}]
    assert by_v2[0]["day"] == 8 and by_v2[0]["auc"] > 0.8  # the campaign it learned still runs
    assert all(d["auc"] < 0.8 for d in by_v2 if d["day"] >= 10)  # the loyalty coupons turned it round
    assert min(d["live_auc"]["2"] for d in by_v2) < 0.8

    history = AlertCenter(registry.store, ()).history(model="retention", kinds=("fire",))
    (floor,) = [h for h in history if h.rule == "live_floor"]
    assert "retention:2: roc_auc" in floor.message and "< 0.8" in floor.message
    (event,) = [h for h in history if h.rule == "live_rollback"]
    assert "rolled back from 2 to 1" in event.message and event.severity == "critical"

    (rollback,) = registry.audit.events(subject="retention", action="live_rollback")
    assert (rollback.payload["from"], rollback.payload["to"]) == ("2", "1")
    assert (rollback.payload["metric"], rollback.payload["floor"]) == ("auc", 0.8)
    (moved,) = registry.audit.events(subject="retention", action="rollback")
    assert moved.actor.startswith("server") and "live performance" in moved.payload["reason"]
    assert registry.model("retention").aliases["champion"] == "1"


def test_the_restored_champion_scores_above_the_floor_again(replay: dict[str, Any]) -> None:
    (day,) = replay["after"]
    assert day["versions"] == {"1": day["checks"]} and day["champion"] == "1"
    assert day["auc"] > 0.8


def test_the_crm_latency_slo_is_watched_and_no_request_failed(
    replay: dict[str, Any], registry: Registry
) -> None:
    rules = {r.name: r for r in load_alert_config(EXAMPLE / "alerts.yaml").rules.rules}
    assert rules["crm-latency-slo"].describe() == "p95 latency > 250 ms (at least 20 requests)"
    assert rules["crm-latency-slo"].severity == "critical"
    stats = {w.version: w for w in window_stats(registry.store, "retention")}
    assert set(stats) == {"1", "2"}
    checks = sum(d["checks"] for d in replay["days"] + replay["after"])
    assert sum(w.requests for w in stats.values()) == checks
    assert all(w.errors == 0 and w.latency_p95 is not None for w in stats.values())
    fired = AlertCenter(registry.store, ()).history(model="retention", kinds=("fire",))
    assert not [h for h in fired if h.rule == "error_rate"]
