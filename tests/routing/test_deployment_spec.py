"""Deployment specs: builders, validation with clear errors, and a lossless JSON round trip."""

from __future__ import annotations

import pytest

from modelward.routing import CanaryPlan, CanaryRules, DeploymentSpec, RoutingError, parse_duration


def test_ab_arms_are_named_after_their_targets_and_round_trip_through_json() -> None:
    spec = DeploymentSpec.ab("churn", {"champion": 50, "3": 50}, key="customer_id", salt="exp-1")
    assert [(a.name, a.target, a.weight) for a in spec.arms] == [
        ("champion", "@champion", 50.0),
        ("v3", "3", 50.0),
    ]
    assert DeploymentSpec.from_dict(spec.to_dict()) == spec


def test_canary_weights_follow_the_plan_step_and_drop_to_zero_when_rolled_back() -> None:
    spec = DeploymentSpec.start_canary("churn", "v3", steps=[5, 25, 50, 100], step_seconds="10m")
    assert spec.canary is not None and spec.canary.step_seconds == 600
    assert spec.policy().shares() == {"baseline": 0.95, "canary": 0.05}
    from dataclasses import replace

    stepped = spec.with_canary(replace(spec.canary, step=2))
    assert stepped.policy().shares() == {"baseline": 0.5, "canary": 0.5}
    back = spec.with_canary(replace(spec.canary, state="rolled_back", reason="error rate"))
    assert back.policy().shares() == {"baseline": 1.0, "canary": 0.0}
    assert back.targets() == ["@champion"]  # a weight-0 arm need not be loaded
    assert DeploymentSpec.from_dict(back.to_dict()) == back


def test_shadow_is_a_target_beside_the_arms() -> None:
    spec = DeploymentSpec.single("churn").with_shadow("3", 0.5)
    assert spec.targets() == ["@champion", "3"]
    assert "shadow=3 (50%)" in spec.describe()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DeploymentSpec.ab("churn", {"champion": 100}), "at least two arms"),
        (lambda: DeploymentSpec.ab("churn", {"champion": 0, "challenger": 0}), "at least one must be > 0"),
        (lambda: DeploymentSpec.ab("churn", {"champion": -1, "challenger": 1}), "finite and >= 0"),
        (lambda: DeploymentSpec.start_canary("churn", 3, steps=[50, 25]), "must increase"),
        (lambda: DeploymentSpec.start_canary("churn", 3, steps=[0, 100]), r"\(0, 100\]"),
        (lambda: DeploymentSpec.start_canary("churn", "@challenger"), "names a version"),
        (lambda: DeploymentSpec.single("churn", "bad target!"), "invalid target"),
        # the server logs these arms itself: mirrored copies, requests that named their version
        (lambda: DeploymentSpec.ab("churn", {"shadow": 50, "champion": 50}), "invalid arm name 'shadow'"),
        (lambda: DeploymentSpec.ab("churn", {"direct": 50, "champion": 50}), "invalid arm name 'direct'"),
        (lambda: DeploymentSpec.single("churn").with_shadow("3", 2.0), "at most 1"),
        (lambda: DeploymentSpec.from_dict({"model": "churn", "arms": [], "colour": 1}), "colour"),
        (lambda: DeploymentSpec.from_dict({"model": "a"}, model="b"), "not 'b'"),
        (lambda: CanaryRules(min_requests=0), "min_requests"),
        (lambda: CanaryPlan("3", state="exploded"), "canary state"),  # type: ignore[arg-type]
    ],
)
def test_invalid_specs_are_refused_with_the_reason(build: object, message: str) -> None:
    with pytest.raises(RoutingError, match=message):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(("text", "seconds"), [("10m", 600), ("90s", 90), ("1.5h", 5400), (30, 30)])
def test_durations_parse_with_units(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_names_the_accepted_forms() -> None:
    with pytest.raises(RoutingError, match="'10m'"):
        parse_duration("ten minutes")
