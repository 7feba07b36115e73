"""A/B reports from the prediction log and feedback, on SQLite and PostgreSQL, against hand counts."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from modelward.errors import ModelwardError, NotFound
from modelward.feedback import ArmData, analyze, check_sample_ratio
from modelward.feedback.abreport import (
    NoExperiment,
    NoFeedback,
    UnknownArm,
    ab_report,
    deployment_ab_report,
    traffic_report,
    weights_since,
)
from modelward.feedback.abtest import ABReport, ABTestError
from modelward.registry.deployments import Deployments
from modelward.routing import DeploymentSpec
from modelward.store import Store
from modelward.store.tables import feedback, predictions

NOW = time.time()


def pred(
    rid: str,
    arm: str | None,
    prediction: Any = 1,
    *,
    ts: float = NOW,
    model: str = "churn",
    error: str | None = None,
) -> dict[str, Any]:
    outputs = {} if error else {"prediction": prediction, "probabilities": {"0": 0.3, "1": 0.7}}
    return {
        "request_id": rid,
        "ts": ts,
        "model": model,
        "version": "2" if arm == "challenger" else "1",
        "arm": arm,
        "routing_key": None,
        "inputs": "{}",
        "outputs": json.dumps(outputs),
        "latency_ms": 1.0,
        "error": error,
    }


def fb(rid: str, label: Any, value: float | None = None) -> dict[str, Any]:
    return {
        "request_id": rid,
        "label": json.dumps(label),
        "value": value,
        "model": "churn",
        "ts": NOW,
        "updated_at": NOW,
        "source": None,
    }


def insert(store: Store, preds: Sequence[dict[str, Any]], labels: Sequence[dict[str, Any]] = ()) -> None:
    with store.write() as conn:
        if preds:
            conn.execute(predictions.insert(), list(preds))
        if labels:
            conn.execute(feedback.insert(), list(labels))


def same_comparisons(got: ABReport, want: ABReport) -> None:
    assert len(got.comparisons) == len(want.comparisons) == 1
    g, w = got.comparisons[0], want.comparisons[0]
    for name in ("difference", "ci_low", "ci_high", "p_value", "sequential_p_value", "mde"):
        assert getattr(g, name) == pytest.approx(getattr(w, name), rel=1e-12), name
    assert (g.significant, g.sequential_significant) == (w.significant, w.sequential_significant)


@pytest.fixture
def logged(store: Store) -> Store:
    """Champion and challenger traffic with known outcomes, and every kind of row that must not count."""
    rows: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    # champion: 40 requests predicting 1; c0..c29 labelled, the first 21 with 1 (in four spellings).
    for i in range(40):
        rows.append(pred(f"c{i}", "champion", 1, ts=NOW - 100 + i))
    spellings = [1, "1", 1.0, True]
    labels += [fb(f"c{i}", spellings[i % 4] if i < 21 else 0) for i in range(30)]
    # challenger: 50 requests predicting i % 2; t0..t39 labelled with 1 when i % 3, else 0.
    for i in range(50):
        rows.append(pred(f"t{i}", "challenger", i % 2, ts=NOW - 100 + i))
    labels += [fb(f"t{i}", 1 if i % 3 else 0) for i in range(40)]
    # Mirrored traffic for c0..c9 (same request ids, logged later): never counted.
    rows += [pred(f"c{i}", "shadow", 0, ts=NOW - 50 + i) for i in range(10)]
    # Requests that named their version (arm "direct"), c10..c14 again later and x0..x4 only so, with
    # feedback: outside the split, never counted (neither as an arm nor as a request's latest row).
    rows += [pred(f"c{i}", "direct", 0, ts=NOW - 45 + i) for i in range(10, 15)]
    rows += [pred(f"x{i}", "direct", 1, ts=NOW - 45 + i) for i in range(5)]
    labels += [fb(f"x{i}", 1) for i in range(5)]
    # Five challenger requests that failed, with feedback: errors, not outcomes.
    rows += [pred(f"e{i}", "challenger", error="ValueError: boom", ts=NOW - 40) for i in range(5)]
    labels += [fb(f"e{i}", 1) for i in range(5)]
    # d0 was answered by the champion, then again (retried) by the challenger: the latest counts.
    rows += [pred("d0", "champion", 1, ts=NOW - 30), pred("d0", "challenger", 1, ts=NOW - 29)]
    labels.append(fb("d0", 1))
    # Another model, and rows before the window: with feedback, yet not counted.
    rows += [pred(f"o{i}", "champion", 1, model="other") for i in range(7)]
    labels += [fb(f"o{i}", 1) for i in range(7)]
    rows += [pred(f"old{i}", "champion", 1, ts=NOW - 10_000) for i in range(6)]
    labels += [fb(f"old{i}", 0) for i in range(6)]
    insert(store, rows, labels)
    return store


def test_correct_counts_and_p_values_equal_the_hand_computation(logged: Store) -> None:
    result = traffic_report(logged, "churn", metric="correct", since=NOW - 1_000)
    traffic = {t.name: t for t in result.traffic}
    assert list(traffic) == ["champion", "challenger"]  # champion is the control found in the log
    assert result.control == "champion"
    champion, challenger = traffic["champion"], traffic["challenger"]
    assert (champion.requests, champion.errors, champion.served, champion.labelled) == (40, 0, 40, 30)
    # 50 + d0, plus 5 errored requests
    assert (challenger.requests, challenger.errors, challenger.served) == (56, 5, 51)
    assert challenger.labelled == 41
    correct_t = sum(1 for i in range(40) if (i % 2) == (1 if i % 3 else 0)) + 1  # + d0
    want = analyze(
        [ArmData("champion", 30, successes=21), ArmData("challenger", 41, successes=correct_t)],
        metric="accuracy",
    )
    got = result.report
    assert [(a.name, a.n) for a in got.arms] == [("champion", 30), ("challenger", 41)]
    assert got.arms[0].mean == pytest.approx(21 / 30)
    assert got.arms[1].mean == pytest.approx(correct_t / 41)
    assert (got.arms[0].ci_low, got.arms[0].ci_high) == pytest.approx(
        (want.arms[0].ci_low, want.arms[0].ci_high)
    )
    same_comparisons(got, want)
    assert got.srm is None  # no deployment, no weights
    assert result.other_arms == {}


def test_shadow_errored_and_unlabelled_requests_never_reach_the_outcomes(logged: Store) -> None:
    everything = ab_report(logged, "churn", metric="label")  # no window: the six old rows count
    n = {a.name: a.n for a in everything.arms}
    assert n == {"champion": 36, "challenger": 41}  # 30 + 6 old; 40 + d0 (not the 5 errors)
    successes = {a.name: round((a.mean or 0) * a.n) for a in everything.arms}
    assert successes == {"champion": 21, "challenger": sum(1 for i in range(40) if i % 3) + 1}


def test_label_metric_excludes_labels_that_are_not_binary(store: Store) -> None:
    rows = [pred(f"a{i}", "champion") for i in range(20)] + [pred(f"b{i}", "challenger") for i in range(20)]
    labels = [fb(f"a{i}", [True, False, "true", 0][i % 4]) for i in range(18)] + [fb("a18", "maybe")]
    labels += [fb(f"b{i}", i % 2) for i in range(20)]
    insert(store, rows, labels)
    result = traffic_report(store, "churn", metric="label")
    a, _ = result.traffic
    assert (a.labelled, a.n, a.excluded, a.examples) == (19, 18, 1, ('"maybe"',))
    want = analyze(
        [ArmData("champion", 18, successes=9), ArmData("challenger", 20, successes=10)], metric="outcome"
    )
    same_comparisons(result.report, want)


def test_value_metric_sums_feedback_values_and_runs_welch(store: Store) -> None:
    rng = np.random.default_rng(3)
    x_a, x_b = rng.normal(10, 2, 60), rng.normal(11, 3, 70)
    rows = [pred(f"a{i}", "baseline") for i in range(80)] + [pred(f"b{i}", "canary") for i in range(70)]
    labels = [fb(f"a{i}", float(v), float(v)) for i, v in enumerate(x_a)]
    labels += [fb(f"b{i}", float(v), float(v)) for i, v in enumerate(x_b)]
    labels.append(fb("a79", "n/a"))  # feedback without a numeric value
    insert(store, rows, labels)
    result = traffic_report(store, "churn", metric="value")
    a, _ = result.traffic
    assert (a.name, a.served, a.labelled, a.n, a.excluded) == ("baseline", 80, 61, 60, 1)
    assert result.report.kind == "continuous"
    assert result.report.arms[0].mean == pytest.approx(x_a.mean(), rel=1e-12)
    want = analyze([ArmData.continuous("baseline", x_a), ArmData.continuous("canary", x_b)], metric="value")
    for name in ("difference", "ci_low", "ci_high", "p_value", "sequential_p_value", "mde"):
        assert getattr(result.report.comparisons[0], name) == pytest.approx(
            getattr(want.comparisons[0], name), rel=1e-9
        ), name


def _split(store: Store, model: str, n_champion: int, n_challenger: int) -> None:
    """Requests served per arm (after the deployment was written), the first 1,000 of each labelled
    (so the labelled counts are equal)."""
    ts = time.time()
    rows = [pred(f"{model}-c{i}", "champion", 1, model=model, ts=ts) for i in range(n_champion)]
    rows += [pred(f"{model}-t{i}", "challenger", 1, model=model, ts=ts) for i in range(n_challenger)]
    labels = [fb(f"{model}-c{i}", i % 2) for i in range(1_000)]
    labels += [fb(f"{model}-t{i}", i % 2) for i in range(1_000)]
    insert(store, rows, labels)


def test_an_injected_two_percent_sample_ratio_mismatch_at_50000_requests_is_flagged(store: Store) -> None:
    deployments = Deployments(store)
    fair_champion = int(np.random.default_rng(11).binomial(50_000, 0.5))
    for model, n_c in (("skewed", 25_500), ("fair", fair_champion)):
        deployments.put(DeploymentSpec.ab(model, {"champion": 50, "challenger": 50}))
        _split(store, model, n_c, 50_000 - n_c)
    skewed = deployment_ab_report(store, "skewed", metric="label", since=NOW - 3600)
    srm = skewed.report.srm
    assert srm is not None and srm.mismatch
    assert srm.observed == {"champion": 25_500, "challenger": 24_500}
    assert srm.chi2 == pytest.approx(20.0)
    assert skewed.report.verdict.startswith("Do not trust these numbers: traffic split is 51/49 but 50/50")
    # The labelled counts alone (1,000 each) would hide it: the check must use served requests.
    assert not check_sample_ratio(
        {"champion": 1_000, "challenger": 1_000}, {"champion": 1, "challenger": 1}
    ).mismatch
    fair = deployment_ab_report(store, "fair", metric="label")
    assert fair.report.srm is not None and not fair.report.srm.mismatch
    assert fair.report.srm.observed["champion"] == fair_champion
    assert fair.weights == {"champion": 0.5, "challenger": 0.5} and fair.control == "champion"


def test_the_sample_ratio_window_starts_when_the_current_weights_came_into_force(store: Store) -> None:
    deployments = Deployments(store)
    deployments.put(DeploymentSpec.ab("churn", {"champion": 90, "challenger": 10}))
    time.sleep(0.01)
    second = deployments.put(DeploymentSpec.ab("churn", {"champion": 50, "challenger": 50}))
    time.sleep(0.01)
    # A salt change keeps the shares: the window still starts at the second revision.
    third = deployments.put(DeploymentSpec.ab("churn", {"champion": 50, "challenger": 50}, salt="s2"))
    start = second.updated_at
    assert weights_since(deployments.history("churn")) == start
    assert weights_since(deployments.history("churn"), revision=1) < start  # type: ignore[operator]
    before = [
        pred(f"p{i}", "champion" if i % 10 else "challenger", ts=start - 60 + i / 100) for i in range(3_000)
    ]
    after = [
        pred(f"q{i}", ["champion", "challenger"][i % 2], ts=start + 0.001 + i / 1e5) for i in range(2_000)
    ]
    insert(
        store,
        before + after,
        [fb(f"p{i}", i % 2) for i in range(3_000)] + [fb(f"q{i}", 1) for i in range(500)],
    )
    result = deployment_ab_report(store, "churn", metric="label")
    assert result.revision == third.revision and result.srm_since == start
    srm = result.report.srm
    assert srm is not None and not srm.mismatch and srm.observed == {"champion": 1_000, "challenger": 1_000}
    # Outcomes still cover the whole window: 2,700 + 250 champion labels.
    assert {t.name: t.n for t in result.traffic} == {"champion": 2_950, "challenger": 550}
    # Over all of it the 90/10 period would look like a mismatch against 50/50.
    whole = ab_report(store, "churn", metric="label", weights={"champion": 1, "challenger": 1})
    assert whole.srm is not None and whole.srm.mismatch


def test_arms_with_a_null_arm_are_primary_and_the_control_is_found_by_name(store: Store) -> None:
    insert(
        store,
        [pred(f"a{i}", None) for i in range(10)] + [pred(f"b{i}", "v2") for i in range(10)],
        [fb(f"a{i}", 1) for i in range(10)] + [fb(f"b{i}", i % 2) for i in range(10)],
    )
    result = deployment_ab_report(store, "churn", metric="correct")
    assert [t.name for t in result.traffic] == ["primary", "v2"] and result.control == "primary"
    assert result.revision is None and result.report.srm is None
    flipped = traffic_report(store, "churn", metric="correct", control="v2")
    assert flipped.report.comparisons[0].control == "v2"


def test_missing_experiments_feedback_and_arms_are_clear_errors(store: Store) -> None:
    with pytest.raises(NoExperiment, match="no predictions of 'churn' are logged"):
        deployment_ab_report(store, "churn")
    insert(store, [pred(f"a{i}", "champion") for i in range(5)])
    with pytest.raises(NoExperiment, match=r"served by one arm \(champion\)"):
        deployment_ab_report(store, "churn")
    Deployments(store).put(DeploymentSpec.ab("churn", {"champion": 50, "challenger": 50}))
    with pytest.raises(NoFeedback, match="no feedback yet for the 5 requests 'churn' served"):
        deployment_ab_report(store, "churn")
    insert(store, [], [fb("a0", "high"), fb("a1", "low")])
    with pytest.raises(NoFeedback, match=r"fits metric 'label'.*0/1 or true/false.*\"high\""):
        deployment_ab_report(store, "churn", metric="label")
    with pytest.raises(UnknownArm, match=r"no arm named 'canary' \(arms: champion, challenger\)") as info:
        deployment_ab_report(store, "churn", control="canary")
    assert isinstance(info.value, ValueError) and isinstance(info.value, ModelwardError)
    assert isinstance(NoFeedback("m", "label", "x"), NotFound)
    # The arm that served nothing yet is reported with zeros; the one with feedback is compared.
    result = deployment_ab_report(store, "churn", metric="correct")
    assert [(t.name, t.served, t.n) for t in result.traffic] == [("champion", 5, 2), ("challenger", 0, 0)]
    # Its requests came before the deployment: none fall in the sample-ratio window.
    assert result.report.srm is not None and result.report.srm.observed == {"champion": 0, "challenger": 0}
    assert result.report.verdict.startswith("Not enough data yet")
    with pytest.raises(ABTestError, match="unknown metric"):
        ab_report(store, "churn", metric="accuracy")  # type: ignore[arg-type]
    with pytest.raises(ABTestError, match="until must be later than since"):
        ab_report(store, "churn", since=NOW, until=NOW - 1)


def test_to_dict_is_strict_json_with_served_and_labelled_counts(logged: Store) -> None:
    Deployments(logged).put(DeploymentSpec.ab("churn", {"champion": 30, "challenger": 70}))
    result = deployment_ab_report(logged, "churn", metric="correct", since=NOW - 1_000)
    out = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert out["metric"] == "correct" and out["control"] == "champion"
    assert out["deployment"]["weights"] == {"champion": 0.3, "challenger": 0.7}
    arms = {a["name"]: a for a in out["arms"]}
    assert arms["challenger"]["errors"] == 5 and arms["challenger"]["labelled"] == 41
    assert arms["champion"]["expected_share"] == pytest.approx(0.3)
    assert out["window"]["since"].endswith("Z") and out["window"]["until"] is None
    assert math.isclose(sum(a["labelled_share"] for a in arms.values()), 1.0)
    assert {"p_value", "sequential_p_value", "mde"} <= set(out["comparisons"][0])


def test_sqlite_finds_a_later_row_through_the_request_id_index(tmp_path: Any) -> None:
    """The latest-row check probes ``request_id`` once per row: through ``(model, ts)`` it would scan
    the whole window once per row (minutes at 10,000 rows in a 15-minute window)."""
    import sqlalchemy as sa

    statements: list[tuple[str, Any]] = []
    with Store(f"sqlite:///{tmp_path / 'plan.db'}") as store:
        store.migrate()
        arms = ("champion", "challenger")
        insert(
            store,
            [pred(f"r{i}", arms[i % 2], ts=NOW - i) for i in range(50)],
            [fb(f"r{i}", i % 3 == 0) for i in range(50)],
        )

        def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            statements.append((statement, parameters))

        sa.event.listen(store.engine, "before_cursor_execute", keep)
        traffic_report(store, "churn", since=NOW - 900, until=NOW + 1)
        sa.event.remove(store.engine, "before_cursor_execute", keep)
        statement, parameters = next((s, p) for s, p in statements if "later" in s)
        with store.read() as conn:
            plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    later = [step for step in plan if step.startswith("SEARCH later")]
    assert later, plan
    assert all("ix_modelward_predictions_request_id" in step for step in later), plan
