from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from modelward.errors import ModelwardError
from modelward.feedback import (
    ABReport,
    ABTestError,
    ArmData,
    analyze,
    check_sample_ratio,
    sequential_p_value,
)
from modelward.feedback import _abstats as core

Z975 = 1.959963984540054


def _binary(c: tuple[int, int], t: tuple[int, int], **kw: object) -> ABReport:
    return analyze(
        [ArmData("champion", c[0], successes=c[1]), ArmData("challenger", t[0], successes=t[1])],
        **kw,  # type: ignore[arg-type]
    )


def _peek(
    p_c: float, p_t: float, reps: int, seed: int, step: int = 100, looks: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate `reps` experiments looked at after every `step` samples per arm.

    Returns, per experiment, whether the sequential p-value (carried forward as `previous`) and the
    fixed-horizon p-value ever fell below 0.05 - both computed by the code analyze() uses."""
    rng = np.random.default_rng(seed)
    s_c = rng.binomial(step, p_c, size=(reps, looks)).cumsum(axis=1)
    s_t = rng.binomial(step, p_t, size=(reps, looks)).cumsum(axis=1)
    previous = np.ones(reps)
    seq_hit = np.zeros(reps, dtype=bool)
    naive_hit = np.zeros(reps, dtype=bool)
    for k in range(looks):
        n = step * (k + 1)
        d, _, _, p, v = core.two_proportion(s_c[:, k], n, s_t[:, k], n, 0.05)
        tau2 = core.default_mixture_variance_binary((s_c[:, k] + s_t[:, k]) / (2 * n))
        previous = core.msprt_p_value(d, v, tau2, previous)
        seq_hit |= previous < 0.05
        naive_hit |= p < 0.05
    return seq_hit, naive_hit


# --- agreement with reference computations -------------------------------------------------------


def test_two_proportion_z_test_matches_a_hand_computation() -> None:
    report = _binary((2_000, 208), (2_100, 260))
    c = report.comparisons[0]
    p_c, p_t = 208 / 2_000, 260 / 2_100
    pooled = (208 + 260) / 4_100
    z = (p_t - p_c) / math.sqrt(pooled * (1 - pooled) * (1 / 2_000 + 1 / 2_100))
    se = math.sqrt(p_t * (1 - p_t) / 2_100 + p_c * (1 - p_c) / 2_000)
    assert c.test == "two-proportion z"
    assert c.difference == pytest.approx(p_t - p_c, abs=1e-15)
    assert c.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-12)
    assert c.ci_low == pytest.approx(p_t - p_c - Z975 * se, rel=1e-12)
    assert c.ci_high == pytest.approx(p_t - p_c + Z975 * se, rel=1e-12)
    assert c.relative_lift == pytest.approx((p_t - p_c) / p_c)
    assert c.significant is (c.p_value is not None and c.p_value < 0.05)


def test_welch_p_value_and_interval_equal_scipy_ttest_ind_on_raw_data() -> None:
    rng = np.random.default_rng(7)
    control = rng.normal(10.0, 2.0, size=400)
    treatment = rng.normal(10.4, 3.0, size=650)
    report = analyze([ArmData.continuous("a", control), ArmData.continuous("b", treatment)], alpha=0.1)
    c = report.comparisons[0]
    ref = stats.ttest_ind(treatment, control, equal_var=False)
    ci = ref.confidence_interval(confidence_level=0.9)
    assert c.test == "welch t"
    assert c.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert c.ci_low == pytest.approx(ci.low, abs=1e-9)
    assert c.ci_high == pytest.approx(ci.high, abs=1e-9)
    assert c.difference == pytest.approx(treatment.mean() - control.mean(), abs=1e-12)


def test_arm_intervals_are_wilson_for_rates_and_student_t_for_means() -> None:
    report = _binary((137, 9), (2_000, 1_990))
    for arm, (k, n) in zip(report.arms, [(9, 137), (1_990, 2_000)], strict=True):
        ref = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert arm.mean == pytest.approx(k / n)
        assert (arm.ci_low, arm.ci_high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    x = np.random.default_rng(3).exponential(2.0, size=50)
    arm = analyze([ArmData.continuous("a", x), ArmData.continuous("b", x + 1)]).arms[0]
    low, high = stats.t.interval(0.95, 49, loc=x.mean(), scale=stats.sem(x))
    assert (arm.ci_low, arm.ci_high) == pytest.approx((low, high), abs=1e-9)


def test_sequential_p_value_is_the_inverse_mixture_likelihood_ratio_carried_as_a_running_minimum() -> None:
    d, v, tau2 = 0.012, 4e-5, 1e-4
    lam = math.sqrt(v / (v + tau2)) * math.exp(tau2 * d * d / (2 * v * (v + tau2)))
    assert sequential_p_value(d, v, tau2) == pytest.approx(1 / lam, rel=1e-12)
    assert sequential_p_value(d, v, tau2, previous=0.01) == 0.01
    assert sequential_p_value(0.0, v, tau2) == 1.0  # Lambda < 1: capped at 1
    assert sequential_p_value(-d, v, tau2) == sequential_p_value(d, v, tau2)
    assert sequential_p_value(0.5, 1e-6, 1e-4) == 0.0  # overwhelming evidence underflows, no error
    assert sequential_p_value(0.01, 0.0, 1e-4) == 0.0  # a known, non-zero difference
    assert sequential_p_value(0.0, 0.0, 1e-4, previous=0.3) == 0.3
    assert sequential_p_value(0.01, 1e-4, 0.0, previous=0.7) == 0.7  # no mixture: no evidence
    looks = [sequential_p_value(d, v, tau2, previous=p) for p in (1.0, 0.2, 0.001)]
    assert looks == sorted(looks, reverse=True)


def test_default_mixture_variance_is_a_tenth_of_the_natural_scale_and_can_be_overridden() -> None:
    report = _binary((5_000, 500), (5_000, 560))
    c = report.comparisons[0]
    rate = 1_060 / 10_000
    v = 0.1 * 0.9 / 5_000 + 0.112 * 0.888 / 5_000
    assert c.sequential_p_value == pytest.approx(sequential_p_value(0.012, v, (0.1 * rate) ** 2), rel=1e-9)
    # symmetric under relabelling success and failure
    flipped = _binary((5_000, 4_500), (5_000, 4_440)).comparisons[0]
    assert flipped.sequential_p_value == pytest.approx(c.sequential_p_value, rel=1e-9)
    wide = _binary((5_000, 500), (5_000, 560), mixture_variance=0.03**2).comparisons[0]
    assert wide.sequential_p_value == pytest.approx(sequential_p_value(0.012, v, 0.03**2), rel=1e-9)

    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 300), rng.normal(0.2, 1, 300)
    s2 = (299 * a.var(ddof=1) + 299 * b.var(ddof=1)) / 598
    cont = analyze([ArmData.continuous("a", a), ArmData.continuous("b", b)]).comparisons[0]
    v_c = a.var(ddof=1) / 300 + b.var(ddof=1) / 300
    expected = sequential_p_value(b.mean() - a.mean(), v_c, 0.01 * s2)
    assert cont.sequential_p_value == pytest.approx(expected, rel=1e-9)


def test_mde_is_the_normal_approximation_at_the_current_sizes() -> None:
    c = _binary((3_000, 300), (2_000, 190), alpha=0.1, power=0.9).comparisons[0]
    rate = 490 / 5_000
    s2 = rate * (1 - rate)
    expected = (stats.norm.ppf(0.95) + stats.norm.ppf(0.9)) * math.sqrt(s2 / 3_000 + s2 / 2_000)
    assert c.mde == pytest.approx(expected, rel=1e-12)


def test_analyze_and_the_simulation_core_give_the_same_numbers() -> None:
    report = _binary((1_200, 130), (1_200, 151))
    c = report.comparisons[0]
    d, lo, hi, p, v = core.two_proportion(130, 1_200, 151, 1_200, 0.05)
    tau2 = core.default_mixture_variance_binary(281 / 2_400)
    assert (c.difference, c.ci_low, c.ci_high, c.p_value) == (float(d), float(lo), float(hi), float(p))
    assert c.sequential_p_value == float(core.msprt_p_value(d, v, tau2))


# --- simulations ----------------------------------------------------------------------------------


def test_a_a_experiments_are_falsely_significant_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(20240601)
    counts = rng.binomial(2_000, 0.1, size=(2_000, 2))
    hits = [_binary((2_000, int(c)), (2_000, int(t))).comparisons[0].significant for c, t in counts]
    rate = float(np.mean(hits))
    assert 0.035 <= rate <= 0.065, rate


def test_peeking_inflates_fixed_horizon_p_values_but_not_sequential_ones() -> None:
    # 2,000 A/A experiments, looked at after every 100 samples per arm up to 5,000 (50 looks).
    seq_hit, naive_hit = _peek(0.1, 0.1, reps=2_000, seed=11)
    assert seq_hit.mean() <= 0.05, seq_hit.mean()
    assert naive_hit.mean() > 0.10, naive_hit.mean()


def test_a_real_lift_is_detected_by_the_fixed_test_and_eventually_by_the_sequential_one() -> None:
    rng = np.random.default_rng(99)
    c = rng.binomial(5_000, 0.10, size=1_000)
    t = rng.binomial(5_000, 0.13, size=1_000)
    fixed = np.mean(
        [
            _binary((5_000, int(a)), (5_000, int(b))).comparisons[0].significant
            for a, b in zip(c, t, strict=True)
        ]
    )
    assert fixed > 0.8, fixed
    seq_hit, _ = _peek(0.10, 0.13, reps=1_000, seed=12)
    assert seq_hit.mean() > 0.8, seq_hit.mean()


def test_an_injected_two_percent_sample_ratio_mismatch_is_flagged() -> None:
    report = _binary((25_500, 2_550), (24_500, 2_450), weights={"champion": 50, "challenger": 50})
    assert report.srm is not None
    assert report.srm.mismatch
    assert report.srm.chi2 == pytest.approx(20.0)
    assert report.srm.expected == {"champion": 25_000.0, "challenger": 25_000.0}
    assert report.srm.observed == {"champion": 25_500, "challenger": 24_500}
    assert report.arms[0].expected_share == 0.5
    assert report.arms[0].observed_share == 0.51


def test_a_correct_split_is_rarely_flagged() -> None:
    draws = np.random.default_rng(4).multinomial(50_000, [0.5, 0.5], size=1_000)
    flagged = [check_sample_ratio({"a": int(a), "b": int(b)}, {"a": 1, "b": 1}).mismatch for a, b in draws]
    assert np.mean(flagged) <= 0.01
    uneven = check_sample_ratio({"a": 9_000, "b": 1_000, "c": 0}, {"a": 0.9, "b": 0.1, "c": 1e-9})
    assert not uneven.mismatch


# --- verdicts and the report ----------------------------------------------------------------------


def test_verdict_reports_a_sequentially_significant_winner_with_its_interval() -> None:
    report = _binary((20_000, 2_080), (20_000, 2_420))
    assert report.comparisons[0].sequential_significant
    assert report.verdict == (
        "challenger converts better than champion: 12.1% vs 10.4% (+1.7 points, 95% CI +1.1 to +2.3). "
        "This holds even though the report was checked repeatedly."
    )
    worse = _binary((20_000, 2_420), (20_000, 2_080), metric="accuracy")
    assert worse.verdict.startswith("challenger has a lower accuracy than champion: 10.4% vs 12.1%")


def test_verdict_is_cautious_when_only_the_fixed_horizon_test_is_significant() -> None:
    report = _binary((3_000, 312), (3_000, 363))
    c = report.comparisons[0]
    assert c.significant and not c.sequential_significant
    assert report.verdict == (
        "challenger looks better than champion: 12.1% vs 10.4% (+1.7 points, 95% CI +0.1 to +3.3), "
        "but this is not yet conclusive under repeated checking; keep the test running."
    )


def test_verdict_without_a_difference_names_the_minimum_detectable_effect() -> None:
    report = _binary((3_000, 300), (3_000, 310))
    assert report.verdict == (
        "No detectable difference yet: with 3,000 samples per arm only a difference of 2.2 points or more "
        "would reliably show up (80% power); keep the test running."
    )


def test_verdict_distrusts_everything_under_a_sample_ratio_mismatch() -> None:
    report = _binary((26_000, 2_080), (24_000, 2_900), weights={"champion": 1, "challenger": 1})
    assert report.comparisons[0].sequential_significant
    assert report.verdict == (
        "Do not trust these numbers: traffic split is 52/48 but 50/50 was configured (sample ratio mismatch)."
    )
    close = _binary((502_500, 0), (497_500, 0), weights={"champion": 1, "challenger": 1})
    assert "split is 50.2/49.8 but 50.0/50.0" in close.verdict


def test_verdict_for_continuous_outcomes_and_several_challengers() -> None:
    rng = np.random.default_rng(8)
    arms = [
        ArmData.continuous("v1", rng.normal(120, 10, 4_000)),
        ArmData.continuous("v2", rng.normal(115, 10, 4_000)),
        ArmData.continuous("v3", rng.normal(120, 10, 4_000)),
    ]
    report = analyze(arms, metric="latency_ms", weights={"v1": 1, "v2": 1, "v3": 1})
    assert report.kind == "continuous"
    assert [c.treatment for c in report.comparisons] == ["v2", "v3"]
    assert report.verdict.startswith(
        "v2 has a lower mean latency_ms than v1: 114.79 vs 119.98 (-5.19, 95% CI -5.63 to -4.75). "
    )
    assert "No detectable difference between v3 and v1 yet: with 4,000 samples per arm" in report.verdict
    control_v3 = analyze(arms, control="v3")
    assert [c.control for c in control_v3.comparisons] == ["v3", "v3"]


def test_empty_and_tiny_arms_give_none_not_nan_and_say_so() -> None:
    report = _binary((0, 0), (10, 3), weights={"champion": 1, "challenger": 1})
    assert report.arms[0].mean is None
    assert report.arms[0].ci_low is None
    c = report.comparisons[0]
    assert c.difference is None and c.p_value is None and c.sequential_p_value is None and c.mde is None
    assert not c.significant and not c.sequential_significant
    assert report.verdict == (
        "Not enough data yet: every arm needs at least 1 sample with an outcome (champion has 0)."
    )
    single = analyze([ArmData.continuous("a", [1.0]), ArmData.continuous("b", [2.0, 3.0])])
    assert single.arms[0].mean == 1.0 and single.arms[0].ci_low is None
    assert single.comparisons[0].difference == 1.5 and single.comparisons[0].p_value is None
    assert "at least 2 samples" in single.verdict
    nothing = _binary((0, 0), (0, 0), weights={"champion": 1, "challenger": 1})
    assert nothing.srm is not None and not nothing.srm.mismatch
    assert nothing.arms[0].observed_share == 0.0


def test_degenerate_outcomes_stay_finite() -> None:
    same = _binary((500, 0), (500, 0))
    c = same.comparisons[0]
    assert (c.difference, c.p_value, c.sequential_p_value, c.mde) == (0.0, 1.0, 1.0, 0.0)
    assert c.relative_lift is None
    assert "every outcome so far is the same" in same.verdict
    const = analyze([ArmData.continuous("a", [2.0] * 5), ArmData.continuous("b", [3.0] * 5)])
    k = const.comparisons[0]
    assert (k.difference, k.ci_low, k.ci_high, k.p_value) == (1.0, 1.0, 1.0, 0.0)


def test_reports_serialise_to_strict_json() -> None:
    rng = np.random.default_rng(2)
    reports = [
        _binary((3_000, 312), (3_000, 363), weights={"champion": 1, "challenger": 1}),
        _binary((0, 0), (1, 1)),
        _binary((500, 0), (500, 0)),
        analyze([ArmData.continuous("a", rng.normal(size=20)), ArmData.continuous("b", [1.0])]),
    ]
    for report in reports:
        text = json.dumps(report.to_dict(), allow_nan=False)
        back = json.loads(text)
        assert back["verdict"] == report.verdict
        assert back["comparisons"][0]["treatment"] == report.comparisons[0].treatment
    assert isinstance(reports[0].to_dict()["comparisons"][0]["significant"], bool)


# --- validation -----------------------------------------------------------------------------------


def test_ab_test_error_is_a_modelward_value_error() -> None:
    assert issubclass(ABTestError, ModelwardError)
    assert issubclass(ABTestError, ValueError)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ArmData("a", -1, successes=0), "must not be negative"),
        (lambda: ArmData("a", 10, successes=-1), "must not be negative"),
        (lambda: ArmData("a", 10, successes=11), "more successes"),
        (lambda: ArmData("a", 10.5, successes=1), "must be an integer"),  # type: ignore[arg-type]
        (lambda: ArmData("a", True, successes=1), "must be an integer"),
        (lambda: ArmData("", 10, successes=1), "non-empty name"),
        (lambda: ArmData("a", 10), "needs successes"),
        (lambda: ArmData("a", 10, successes=1, total=1.0, total_sq=1.0), "both successes and sums"),
        (lambda: ArmData("a", 2, total=10.0, total_sq=1.0), "cannot come from"),
        (lambda: ArmData("a", 2, total=math.nan, total_sq=1.0), "finite"),
        (lambda: ArmData.binary("a", [0, 1, 2]), "0 or 1"),
        (lambda: ArmData.binary("a", [[0, 1]]), "one-dimensional"),
        (lambda: ArmData.continuous("a", [1.0, math.inf]), "finite"),
        (lambda: ArmData.continuous("a", ["x"]), "must be numbers"),
        (lambda: analyze([ArmData("a", 1, successes=1)]), "at least two arms"),
        (lambda: analyze([ArmData("a", 1, successes=1), ArmData("a", 1, successes=0)]), "unique"),
        (lambda: analyze([ArmData("a", 1, successes=1), ArmData.continuous("b", [1.0])]), "mix binary"),
        (lambda: _binary((10, 1), (10, 2), control="nobody"), "control 'nobody'"),
        (lambda: _binary((10, 1), (10, 2), alpha=0.0), "alpha"),
        (lambda: _binary((10, 1), (10, 2), power=1.0), "power"),
        (lambda: _binary((10, 1), (10, 2), mixture_variance=0.0), "mixture_variance"),
        (lambda: _binary((10, 1), (10, 2), weights={"champion": 1}), "one weight per arm"),
        (lambda: _binary((10, 1), (10, 2), weights={"champion": 1, "challenger": 0}), "positive"),
        (lambda: analyze([ArmData("a", 1, successes=1), (1, 1)]), "must be ArmData"),  # type: ignore[list-item]
        (lambda: sequential_p_value(0.1, -1.0, 0.1), "must not be negative"),
        (lambda: sequential_p_value(0.1, 1.0, 0.1, previous=1.5), "previous"),
    ],
)
def test_invalid_input_is_refused_with_an_ab_test_error(build: object, message: str) -> None:
    with pytest.raises(ABTestError, match=message):
        build()  # type: ignore[operator]


def test_arm_data_from_raw_outcomes() -> None:
    arm = ArmData.binary("a", np.array([True, False, True, True]))
    assert (arm.n, arm.successes, arm.kind) == (4, 3, "binary")
    arm2 = ArmData("b", np.int64(4), successes=np.int64(2))  # type: ignore[arg-type]
    assert type(arm2.n) is int and type(arm2.successes) is int
    cont = ArmData.continuous("c", [1.0, 2.0, 3.0])
    assert (cont.n, cont.total, cont.total_sq, cont.kind) == (3, 6.0, 14.0, "continuous")
