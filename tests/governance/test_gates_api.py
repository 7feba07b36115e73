"""The gates through the Python API: a regressor's RMSE regression and metric floors, policy errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import modelward
from modelward.config import Settings
from modelward.errors import ConfigError
from modelward.governance.policy import parse_policy


@pytest.fixture
def prices(settings: Settings) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"size": rng.uniform(20, 200, 500), "rooms": rng.integers(1, 6, 500).astype(float)})
    data["price"] = 3.0 * data["size"] + rng.normal(0, 5, 500)
    good = LinearRegression().fit(data[["size", "rooms"]], data["price"])
    modelward.register(good, "prices", train_data=data, target="price", settings=settings)
    modelward.promote("prices", 1, settings=settings)
    worse = LinearRegression().fit(data[["size", "rooms"]], rng.permutation(data["price"].to_numpy()))
    modelward.register(worse, "prices", train_data=data, target="price", settings=settings)
    return data


def test_a_regressor_is_held_to_its_rmse_and_to_the_floors_of_its_policy(
    prices: pd.DataFrame, settings: Settings, tmp_path: Path
) -> None:
    result = modelward.validate("prices:2", data=prices, settings=settings)
    gates = {g.name: g for g in result.gates}
    assert gates["regression"].verdict == "fail"
    assert gates["regression"].op == "<="
    assert gates["regression"].detail["metric"] == "rmse"
    assert gates["regression"].value > gates["regression"].detail["champion"] + 0.01
    policy = tmp_path / "policy.yaml"
    policy.write_text("regression: null\nmetrics:\n  r2: {min: 0.9}\n  mae: {max: 10}\n")
    result = modelward.validate("prices:1", data=prices, policy=policy, settings=settings)
    assert result.passed
    assert [g.name for g in result.gates] == ["integrity", "schema", "metric:r2", "metric:mae"]
    assert (result.gates[1].verdict, result.gates[1].reason) == (
        "skipped",
        "nothing to compare with: prices:1 holds champion",
    )
    result = modelward.validate("prices:2", data=prices, policy=policy, settings=settings)
    assert {g.name for g in result.failing} == {"metric:r2", "metric:mae"}


def test_a_policy_with_a_mistake_is_refused_naming_the_field_and_line() -> None:
    with pytest.raises(ConfigError, match=r"metrics.aucc \(line 2\): Input should be 'auc'"):
        parse_policy("metrics:\n  aucc: {min: 0.8}\n", source="p.yaml")
    with pytest.raises(ConfigError, match=r"fairness.sensitive \(line 3\)"):
        parse_policy("regression: null\nfairness:\n  sensitive: []\n", source="p.yaml")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 1\): mapping values are not allowed"):
        parse_policy("latency: p95_ms: 5\n", source="p.yaml")
    with pytest.raises(ConfigError, match="a policy is a YAML mapping"):
        parse_policy("- auc\n", source="p.yaml")
    assert parse_policy("").regression is not None  # the defaults: regression on
    assert parse_policy("regression: null\n").regression is None
