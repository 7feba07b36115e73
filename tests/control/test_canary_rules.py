"""The canary decision rules on synthetic windows: rollback, hold, advance and promote."""

from __future__ import annotations

import random

import pytest

from modelward.control.canary import decide, newcombe_lower, wilson_interval
from modelward.monitoring.arm_performance import ArmPerformance
from modelward.monitoring.window_stats import ArmWindow, summarize_arm
from modelward.routing import CanaryPlan, CanaryRules

STEP = 600.0


def window(
    arm: str,
    n: int,
    *,
    fail: float = 0.0,
    churn: float = 0.2,
    latency: tuple[float, float] = (1.0, 3.0),
    seed: int = 0,
) -> ArmWindow:
    """``n`` requests: each fails with probability ``fail``; the others predict churn with ``churn``."""
    rng = random.Random(seed)
    failed = [rng.random() < fail for _ in range(n)]
    labels = ["1" if rng.random() < churn else "0" for f in failed if not f]
    scores = [rng.uniform(0.5, 1.0) if label == "1" else rng.uniform(0.0, 0.5) for label in labels]
    return summarize_arm(
        "1" if arm == "baseline" else "2",
        arm,
        latency_ms=[rng.uniform(*latency) for _ in range(n)],
        failed=failed,
        labels=labels,
        scores=scores,
    )


def plan(step: int = 0, **rules: object) -> CanaryPlan:
    return CanaryPlan("2", step=step, step_seconds=STEP, step_started_at=0.0, rules=CanaryRules(**rules))  # type: ignore[arg-type]


def test_a_canary_failing_20_percent_is_rolled_back_after_a_few_dozen_requests() -> None:
    # Requests arrive one by one at 5 % canary traffic; the controller looks after each one.
    rng = random.Random(7)
    outcomes: list[bool] = []
    rolled_back_at = None
    for n in range(1, 400):
        outcomes.append(rng.random() < 0.2)
        canary = summarize_arm(
            "2", "canary", latency_ms=[2.0] * n, failed=outcomes, labels=["0"] * (n - sum(outcomes))
        )
        baseline = window("baseline", 19 * n, fail=0.002, seed=n)
        decision = decide(plan(), None, baseline, canary, now=30.0)
        if decision.action == "rollback":
            rolled_back_at = n
            break
        assert decision.action == "hold"
    assert rolled_back_at is not None and rolled_back_at <= 60, rolled_back_at
    assert decision.checks[0].name == "error_rate" and decision.checks[0].status == "fail"
    assert "with 95% confidence" in decision.reasons[0]
    assert "error rate" in decision.reasons[0]


def test_the_20_percent_rollback_is_reliable_over_many_canaries() -> None:
    needed = []
    for seed in range(200):
        rng = random.Random(seed)
        outcomes: list[bool] = []
        for n in range(1, 300):
            outcomes.append(rng.random() < 0.2)
            canary = summarize_arm("2", "canary", latency_ms=[2.0] * n, failed=outcomes)
            baseline = summarize_arm("1", "baseline", latency_ms=[2.0] * 19 * n, failed=[False] * 19 * n)
            if decide(plan(), None, baseline, canary, now=1.0).action == "rollback":
                needed.append(n)
                break
    assert len(needed) == 200
    assert sorted(needed)[189] <= 60  # 95 % of failing canaries are stopped within 60 requests


def test_a_healthy_canary_is_not_rolled_back_for_a_few_errors() -> None:
    rolled = 0
    for seed in range(300):
        canary = window("canary", 200, fail=0.01, seed=seed)
        baseline = window("baseline", 3800, fail=0.01, seed=10_000 + seed)
        rolled += decide(plan(), None, baseline, canary, now=STEP + 1).action == "rollback"
    assert rolled <= 6  # at most 2 %: the divergence check's chi-square gate keeps noise out


def test_an_error_rate_above_the_limit_but_equal_to_the_baselines_is_not_a_rollback() -> None:
    # Both arms fail 10 %: the canary is no worse than what it replaces (say, bad input upstream).
    canary = window("canary", 300, fail=0.1, seed=1)
    baseline = window("baseline", 3000, fail=0.1, seed=2)
    decision = decide(plan(), None, baseline, canary, now=STEP + 1)
    assert decision.checks[0].status == "pass"
    assert decision.action == "advance"


def test_a_healthy_canary_holds_until_the_step_ends_then_advances() -> None:
    canary, baseline = window("canary", 120, seed=3), window("baseline", 2400, seed=4)
    early = decide(plan(), None, baseline, canary, now=STEP / 2)
    assert early.action == "hold"
    assert "step 1/4 (5%): 5m 00s left" in early.reasons[0]
    late = decide(plan(), None, baseline, canary, now=STEP)
    assert late.action == "advance", late.reasons
    assert late.reasons == ["step 1/4 (5%): every check passed; going to 25%"]
    assert {c.name: c.status for c in late.checks} == {
        "error_rate": "pass",
        "latency_p95": "pass",
        "latency_p99": "pass",
        "divergence": "pass",
        "performance": "skipped",
    }


def test_a_healthy_canary_on_the_last_step_is_promoted() -> None:
    canary, baseline = window("canary", 500, seed=5), window("baseline", 500, seed=6)
    decision = decide(plan(step=3), None, baseline, canary, now=STEP + 1)
    assert decision.action == "promote"
    assert decision.percent == 100.0
    assert "last step" in decision.reasons[0]


def test_not_enough_requests_when_the_step_ends_holds_with_the_reason() -> None:
    canary, baseline = window("canary", 12, seed=7), window("baseline", 400, seed=8)
    decision = decide(plan(), None, baseline, canary, now=STEP + 1)
    assert decision.action == "hold"
    assert decision.reasons == [
        "step 1/4 (5%): not enough data: error rate, latency p95, latency p99, divergence need 50 requests "
        "per arm (baseline 400, canary 12)"
    ]
    assert {c.status for c in decision.checks if c.name != "performance"} == {"insufficient"}


def test_a_slower_canary_is_rolled_back_at_the_end_of_the_step() -> None:
    canary = window("canary", 200, latency=(20.0, 40.0), seed=9)
    baseline = window("baseline", 2000, latency=(8.0, 12.0), seed=10)
    assert decide(plan(), None, baseline, canary, now=10.0).action == "hold"  # not mid-step
    decision = decide(plan(), None, baseline, canary, now=STEP + 1)
    assert decision.action == "rollback"
    failed = {c.name for c in decision.checks if c.status == "fail"}
    assert failed == {"latency_p95", "latency_p99"}
    assert any("canary p95" in r and "limit 1.5x" in r for r in decision.reasons)


def test_latency_ratios_are_ignored_while_both_arms_are_under_the_slack() -> None:
    canary = window("canary", 200, latency=(3.0, 4.5), seed=11)
    baseline = window("baseline", 2000, latency=(0.5, 1.0), seed=12)  # 4x slower, but both under 5 ms
    decision = decide(plan(), None, baseline, canary, now=STEP + 1)
    assert decision.action == "advance"
    assert "within 5 ms of the baseline" in decision.checks[1].detail


def test_latency_ratios_are_ignored_while_the_difference_is_within_the_slack() -> None:
    canary = window("canary", 200, latency=(9.0, 10.0), seed=19)  # 1.7x of a 6 ms p95, but +4 ms
    baseline = window("baseline", 2000, latency=(4.0, 6.0), seed=20)
    decision = decide(plan(), None, baseline, canary, now=STEP + 1)
    assert decision.action == "advance", decision.reasons
    assert decision.checks[1].value is not None and decision.checks[1].value > 1.5
    slow = decide(plan(latency_slack_ms=2.0), None, baseline, canary, now=STEP + 1)
    assert slow.action == "rollback"


def test_divergence_is_not_judged_on_the_last_step_without_concurrent_baseline_traffic() -> None:
    # At 100 % the baseline window is an earlier period: input drift would look like divergence.
    canary = window("canary", 500, churn=0.7, seed=21)
    baseline = window("baseline", 500, churn=0.2, seed=22)
    decision = decide(plan(step=3), None, baseline, canary, now=STEP + 1)
    assert decision.action == "promote"
    divergence = next(c for c in decision.checks if c.name == "divergence")
    assert divergence.status == "skipped" and "earlier steps" in divergence.detail


def test_a_canary_predicting_a_different_distribution_is_rolled_back() -> None:
    canary = window("canary", 300, churn=0.7, seed=13)
    baseline = window("baseline", 3000, churn=0.2, seed=14)
    decision = decide(plan(), None, baseline, canary, now=STEP + 1)
    assert decision.action == "rollback"
    divergence = next(c for c in decision.checks if c.name == "divergence")
    assert divergence.status == "fail"
    assert divergence.value is not None and divergence.value > 0.2
    assert "Jensen-Shannon distance of predicted labels" in decision.reasons[0]


def test_live_performance_counts_only_with_enough_labels_and_a_significant_drop() -> None:
    canary, baseline = window("canary", 300, seed=15), window("baseline", 3000, seed=16)
    few = {
        "baseline": ArmPerformance("baseline", 500, "accuracy", 0.9),
        "canary": ArmPerformance("canary", 10, "accuracy", 0.5),
    }
    assert decide(plan(), None, baseline, canary, STEP + 1, few).action == "advance"
    worse = {
        "baseline": ArmPerformance("baseline", 2000, "accuracy", 0.9),
        "canary": ArmPerformance("canary", 200, "accuracy", 0.75),
    }
    decision = decide(plan(), None, baseline, canary, STEP + 1, worse)
    assert decision.action == "rollback"
    assert "accuracy canary 0.75" in decision.reasons[0]
    noisy = {
        "baseline": ArmPerformance("baseline", 60, "accuracy", 0.9),
        "canary": ArmPerformance("canary", 60, "accuracy", 0.83),
    }
    assert (
        decide(plan(), None, baseline, canary, STEP + 1, noisy).action == "advance"
    )  # 7 points, not significant


def test_rmse_counts_relative_increases_as_drops() -> None:
    canary, baseline = window("canary", 300, seed=17), window("baseline", 3000, seed=18)
    perf = {
        "baseline": ArmPerformance("baseline", 1000, "rmse", 10.0, stderr=0.1),
        "canary": ArmPerformance("canary", 1000, "rmse", 11.0, stderr=0.1),
    }
    decision = decide(plan(metric="rmse"), None, baseline, canary, STEP + 1, perf)
    assert decision.action == "rollback"
    assert next(c for c in decision.checks if c.name == "performance").value == pytest.approx(0.1)


def test_a_finished_canary_is_left_alone() -> None:
    done = CanaryPlan("2", state="rolled_back", reason="errors")
    decision = decide(done, None, window("baseline", 10), window("canary", 10), now=1e9)
    assert decision.action == "hold"
    assert decision.checks == []


def test_wilson_and_newcombe_bounds_match_known_values() -> None:
    low, high = wilson_interval(6, 30)
    assert low == pytest.approx(0.1071, abs=1e-3) and high == pytest.approx(0.3425, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # 0.2 - sqrt((0.2 - 0.1071)^2 + (0.0047 - 0)^2), Newcombe (1998) method 10
    assert newcombe_lower(6, 30, 0, 570) == pytest.approx(0.1070, abs=1e-3)
