"""Alert rules turn typed inputs into signals: firing, clear, or cannot tell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelward.drift import DriftReport, compare_samples
from modelward.errors import ConfigError
from modelward.monitoring.alert_rules import (
    AlertInputs,
    DatasetDriftRule,
    ErrorRateRule,
    EstimatedDropRule,
    EstimateSnapshot,
    FeatureDriftRule,
    LatencyRule,
    PerformanceRule,
    PerformanceSnapshot,
    RuleSet,
    TrafficStats,
    fingerprint,
    parse_condition,
)


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0, shift_b: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": rng.normal(shift, 1, n),
            "b": rng.normal(shift_b, 1, n),
            "c": rng.choice(["x", "y"], n),
        }
    )


@pytest.fixture(scope="module")
def reports() -> dict[str, DriftReport]:
    rng = np.random.default_rng(0)
    ref = _frame(rng, 6000)
    return {
        "same": compare_samples(ref, _frame(rng, 6000)),
        "a_only": compare_samples(ref, _frame(rng, 6000, shift=1.0)),
        "a_and_b": compare_samples(ref, _frame(rng, 6000, shift=1.0, shift_b=1.0)),
    }


def test_dataset_drift_fires_only_on_the_dataset_verdict(reports: dict[str, DriftReport]) -> None:
    rule = DatasetDriftRule()
    (clear,) = rule.evaluate(AlertInputs("churn", "1", drift=reports["same"]))
    (partial,) = rule.evaluate(AlertInputs("churn", "1", drift=reports["a_only"]))
    (fired,) = rule.evaluate(AlertInputs("churn", "1", drift=reports["a_and_b"]))
    assert clear.firing is False and partial.firing is False  # 1 of 3 is below the 50% share
    assert fired.firing is True
    assert fired.value == pytest.approx(2 / 3)
    assert fired.message.startswith("churn:1: dataset drift: 2 of 3 features drifted")
    assert "a, b" in fired.message
    assert fired.subject == "dataset" and fired.severity == "warning"


def test_feature_drift_named_and_any(reports: dict[str, DriftReport]) -> None:
    named = FeatureDriftRule(feature="a")
    other = FeatureDriftRule(name="b-drift", feature="b")
    anything = FeatureDriftRule(name="any-feature")
    inputs = AlertInputs("churn", drift=reports["a_only"])
    (a,) = named.evaluate(inputs)
    (b,) = other.evaluate(inputs)
    (any_,) = anything.evaluate(inputs)
    assert a.firing is True and a.subject == "feature:a" and "feature 'a' drifted" in a.message
    assert b.firing is False
    assert any_.firing is True and any_.value == 1.0 and any_.subject == "features"
    (none,) = anything.evaluate(AlertInputs("churn", drift=reports["same"]))
    assert none.firing is False
    (missing,) = FeatureDriftRule(feature="nope").evaluate(inputs)
    assert missing.firing is None


def test_performance_rule_needs_enough_labels() -> None:
    rule = PerformanceRule(metric="roc_auc", op="<", threshold=0.8, min_labels=100)
    low = AlertInputs("m", performance=PerformanceSnapshot({"roc_auc": 0.74}, labels=512))
    few = AlertInputs("m", performance=PerformanceSnapshot({"roc_auc": 0.50}, labels=99))
    good = AlertInputs("m", performance=PerformanceSnapshot({"roc_auc": 0.91}, labels=512))
    absent = AlertInputs("m", performance=PerformanceSnapshot({"accuracy": 0.9}, labels=512))
    (s_low,) = rule.evaluate(low)
    assert s_low.firing is True and s_low.value == 0.74
    assert s_low.message == "m: roc_auc 0.74 < 0.8 on 512 labels"
    assert rule.evaluate(few)[0].firing is None
    (s_good,) = rule.evaluate(good)
    assert s_good.firing is False and ">= 0.8" in s_good.message
    assert rule.evaluate(absent)[0].firing is None
    assert rule.evaluate(AlertInputs("m"))[0].firing is None
    upper = PerformanceRule(name="loss", metric="log_loss", op=">", threshold=0.5)
    assert upper.evaluate(AlertInputs("m", performance=PerformanceSnapshot({"log_loss": 0.7}, 200)))[0].firing


def test_parse_condition() -> None:
    assert parse_condition("roc_auc < 0.80") == ("roc_auc", "<", 0.8)
    assert parse_condition(" rmse>=12.5 ") == ("rmse", ">=", 12.5)
    with pytest.raises(ConfigError, match="METRIC OP NUMBER"):
        parse_condition("roc_auc is low")


def test_estimated_drop_compares_with_the_reference_and_respects_trust() -> None:
    rule = EstimatedDropRule(metric="accuracy", max_drop=0.05, min_rows=100)
    dropped = EstimateSnapshot({"accuracy": 0.80}, {"accuracy": 0.88}, rows=500)
    fine = EstimateSnapshot({"accuracy": 0.86}, {"accuracy": 0.88}, rows=500)
    untrusted = EstimateSnapshot({"accuracy": 0.70}, {"accuracy": 0.88}, 500, {"accuracy": "ece 0.09 > 0.05"})
    (s,) = rule.evaluate(AlertInputs("m", estimate=dropped))
    assert s.firing is True and s.value == pytest.approx(0.08)
    assert rule.evaluate(AlertInputs("m", estimate=fine))[0].firing is False
    (u,) = rule.evaluate(AlertInputs("m", estimate=untrusted))
    assert u.firing is None and "cannot be trusted (ece 0.09 > 0.05)" in u.message
    assert EstimatedDropRule(require_trusted=False).evaluate(AlertInputs("m", estimate=untrusted))[0].firing
    few = EstimateSnapshot({"accuracy": 0.5}, {"accuracy": 0.88}, rows=10)
    assert rule.evaluate(AlertInputs("m", estimate=few))[0].firing is None
    auc = EstimateSnapshot({"roc_auc": 0.7}, {}, rows=500)
    assert EstimatedDropRule(metric="roc_auc").evaluate(AlertInputs("m", estimate=auc))[0].firing is None
    fixed = EstimatedDropRule(name="auc", metric="roc_auc", reference=0.9, max_drop=0.1)
    assert fixed.evaluate(AlertInputs("m", estimate=auc))[0].firing is True


def test_error_rate_and_latency_need_enough_requests() -> None:
    errors = ErrorRateRule(max_rate=0.05, min_requests=100)
    latency = LatencyRule(p95_ms=500, min_requests=20)
    busy = AlertInputs("m", traffic=TrafficStats(requests=1000, errors=80, p95_ms=650.0))
    calm = AlertInputs("m", traffic=TrafficStats(requests=1000, errors=10, p95_ms=120.0))
    quiet = AlertInputs("m", traffic=TrafficStats(requests=10, errors=10, p95_ms=9000.0))
    (e,) = errors.evaluate(busy)
    assert e.firing is True and e.value == 0.08 and "80 of 1000 requests" in e.message
    assert errors.evaluate(calm)[0].firing is False
    assert errors.evaluate(quiet)[0].firing is None
    (lat,) = latency.evaluate(busy)
    assert lat.firing is True and lat.value == 650.0 and lat.subject == "latency_p95"
    assert latency.evaluate(calm)[0].firing is False
    assert latency.evaluate(quiet)[0].firing is None
    assert TrafficStats(0, 0).error_rate is None


def test_rules_check_their_arguments() -> None:
    with pytest.raises(ConfigError, match="severity"):
        DatasetDriftRule(severity="loud")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_rate"):
        ErrorRateRule(max_rate=1.5)
    with pytest.raises(ConfigError, match="comparison"):
        PerformanceRule(op="==")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rule name"):
        DatasetDriftRule(name="has spaces")
    with pytest.raises(ConfigError, match="two alert rules are named 'x'"):
        RuleSet((DatasetDriftRule(name="x"), LatencyRule(name="x")))


def test_a_ruleset_applies_rules_to_their_models_only(reports: dict[str, DriftReport]) -> None:
    rules = RuleSet((DatasetDriftRule(models=("churn",)), LatencyRule()))
    inputs = AlertInputs("other", drift=reports["a_and_b"], traffic=TrafficStats(100, 0, 900.0))
    signals = rules.evaluate(inputs)
    assert [s.rule for s in signals] == ["latency"]
    assert signals[0].fingerprint == fingerprint("latency", "other", "latency_p95")
    assert fingerprint("latency", "other", "x") != fingerprint("latency", "churn", "x")
