"""`modelward abtest report` as a user meets it: tables, JSON for scripts, one-line errors."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from modelward.cli import main
from modelward.config import Settings
from modelward.feedback import ArmData, analyze
from modelward.registry.deployments import Deployments
from modelward.routing import DeploymentSpec
from modelward.store import Store
from modelward.store.tables import feedback, predictions


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    settings.ensure_home()
    s = Store(settings.resolved_database_url).open()
    s.migrate()
    yield s
    s.close()


def insert(store: Store, n: int, arm: str, correct: int, labelled: int, *, shift: int = 0) -> None:
    """``n`` requests served by ``arm`` predicting 1; the first ``labelled`` have a label, of which the
    first ``correct`` are 1 (correct)."""
    now = time.time()
    rows: list[dict[str, Any]] = [
        {
            "request_id": f"{arm}-{i}",
            "ts": now + (shift + i) * 1e-4,
            "model": "churn",
            "version": "1",
            "arm": arm,
            "routing_key": None,
            "inputs": "{}",
            "outputs": json.dumps({"prediction": 1}),
            "latency_ms": 1.0,
        }
        for i in range(n)
    ]
    labels = [
        {
            "request_id": f"{arm}-{i}",
            "label": json.dumps(1 if i < correct else 0),
            "value": None,
            "model": "churn",
            "ts": now,
            "updated_at": now,
        }
        for i in range(labelled)
    ]
    with store.write() as conn:
        conn.execute(predictions.insert(), rows)
        if labels:
            conn.execute(feedback.insert(), labels)


@pytest.fixture
def experiment(store: Store) -> Store:
    """churn at 50/50: champion 1,000 served, 400 labelled, 300 correct; challenger 980 / 400 / 340."""
    Deployments(store).put(DeploymentSpec.ab("churn", {"champion": 50, "challenger": 50}))
    insert(store, 1_000, "champion", 300, 400)
    insert(store, 980, "challenger", 340, 400, shift=1_000)
    return store


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_json_gives_counts_p_values_srm_and_verdict(
    experiment: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "abtest", "report", "churn", "--json", "--since", "1h")
    assert code == 0, err
    report = json.loads(out)
    assert report["model"] == "churn" and report["metric"] == "correct" and report["control"] == "champion"
    arms = {a["name"]: a for a in report["arms"]}
    assert (arms["champion"]["served"], arms["champion"]["n"], arms["champion"]["mean"]) == (1_000, 400, 0.75)
    assert (arms["challenger"]["served"], arms["challenger"]["n"], arms["challenger"]["mean"]) == (
        980,
        400,
        0.85,
    )
    reference = analyze(
        [ArmData("champion", 400, successes=300), ArmData("challenger", 400, successes=340)],
        metric="accuracy",
    )
    want = reference.comparisons[0]
    c = report["comparisons"][0]
    assert c["treatment"] == "challenger"
    assert c["p_value"] == pytest.approx(want.p_value)
    assert c["sequential_p_value"] == pytest.approx(want.sequential_p_value)
    assert c["mde"] == pytest.approx(want.mde)
    assert (
        report["srm"]["observed"] == {"champion": 1_000, "challenger": 980} and not report["srm"]["mismatch"]
    )
    assert report["deployment"]["revision"] == 1
    assert report["verdict"] == reference.verdict
    assert report["verdict"].startswith("challenger looks higher on accuracy than champion")


def test_report_prints_tables_for_people(experiment: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "abtest", "report", "churn", "--control", "challenger")
    assert code == 0
    assert "compared with challenger" in out
    champion_row = next(line for line in out.splitlines() if line.strip().startswith("champion"))
    assert "1,000" in champion_row and "75.0%" in champion_row
    assert "-10.0 pts" in out  # champion minus challenger
    assert "Sample ratio" in out and ", ok" in out
    assert "Verdict: champion looks lower on accuracy than challenger" in out


def test_label_metric_and_alpha_are_passed_on(experiment: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "abtest", "report", "churn", "--metric", "label", "--alpha", "0.01", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["metric"] == "label" and report["alpha"] == 0.01
    assert [a["mean"] for a in report["arms"]] == [0.75, 0.85]  # every prediction is 1: same as correct


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--control", "canary"], "no arm named 'canary' (arms: champion, challenger)"),
        (["--metric", "auc"], "--metric must be one of correct, label, value, not 'auc'"),
        (["--since", "last week"], "--since: cannot read 'last week' as a time"),
        (["--until", "1d"], "until must be later than since"),
    ],
)
def test_user_mistakes_are_one_line_errors(
    experiment: Store, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "abtest", "report", "churn", "--since", "2h", *argv)
    assert code == 1 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_no_experiment_and_no_feedback_are_one_line_errors(
    store: Store, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=settings.resolved_tracking_uri).create_registered_model("churn")
    code, _, err = run(capsys, "abtest", "report", "churn")
    assert code == 1 and "no A/B test to report: no predictions of 'churn' are logged" in err
    insert(store, 10, "champion", 0, 0)
    code, _, err = run(capsys, "abtest", "report", "churn")
    assert code == 1 and "has no A/B deployment" in err and "one arm (champion)" in err
    insert(store, 10, "challenger", 0, 0)
    code, _, err = run(capsys, "abtest", "report", "churn", "--json")
    assert code == 1 and "no feedback yet for the 20 requests 'churn' served" in err
    assert len(err.strip().splitlines()) == 1
