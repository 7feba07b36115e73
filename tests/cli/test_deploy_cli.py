"""`modelward deploy`, `deploy status`, `deploy history` and `modelward controller` as a user meets them."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from modelward.cli import main
from modelward.registry import Registry
from modelward.store.tables import predictions


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def log(
    registry: Registry,
    arm: str,
    version: str,
    n: int,
    *,
    ago: float = 60.0,
    shadow_of: str = "",
    spread: float = 0.01,
) -> None:
    now = time.time()
    rows = [
        {
            "request_id": f"{shadow_of or arm}-{i}",
            "ts": now - ago + i * spread,
            "model": "churn",
            "version": version,
            "arm": arm,
            "routing_key": None,
            "inputs": "{}",
            "outputs": json.dumps({"prediction": i % 2, "probabilities": {"0": 0.5, "1": 0.5}}),
            "latency_ms": 2.0,
            "error": None,
        }
        for i in range(n)
    ]
    with registry.store.write() as conn:
        conn.execute(predictions.insert(), rows)


def test_deploy_ab_stores_sticky_arms_with_key_and_salt(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    found = run_json(
        capsys,
        "deploy",
        "churn",
        "--ab",
        "champion=50",
        "challenger=50",
        "--key",
        "customer_id",
        "--salt",
        "exp-7",
    )
    assert found["revision"] == 1
    spec = found["spec"]
    assert spec["strategy"] == "ab"
    assert [(a["name"], a["target"], a["weight"]) for a in spec["arms"]] == [
        ("champion", "@champion", 50.0),
        ("challenger", "@challenger", 50.0),
    ]
    assert (spec["key"], spec["salt"]) == ("customer_id", "exp-7")
    assert found["resolved"] == {"@champion": "1", "@challenger": "2"}
    stored = churn.deployments.get("churn")
    assert stored is not None and stored.spec.key == "customer_id"
    # Re-weighting keeps the key and salt, so only the keys that must move do.
    code, out, _ = run(capsys, "deploy", "churn", "--ab", "champion=70,challenger=30")
    assert code == 0
    assert "revision 2" in out and "weight 70" in out
    stored = churn.deployments.get("churn")
    assert stored is not None and (stored.spec.key, stored.spec.salt) == ("customer_id", "exp-7")
    # The same command again stores nothing new.
    again = run_json(capsys, "deploy", "churn", "--ab", "champion=70", "challenger=30")
    assert (again["revision"], again["unchanged"]) == (2, True)


def test_deploy_canary_stores_the_plan_and_its_rules(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    found = run_json(
        capsys,
        "deploy",
        "churn",
        "--canary",
        "2",
        "--steps",
        "5,25,50,100",
        "--step-duration",
        "10m",
        "--max-error-rate",
        "0.1",
        "--reason",
        "forest beats logreg offline",
    )
    canary = found["spec"]["canary"]
    assert canary["version"] == "2" and canary["baseline"] == "@champion"
    assert canary["steps"] == [5.0, 25.0, 50.0, 100.0]
    assert canary["step_seconds"] == 600.0 and canary["step_started_at"] is not None
    assert canary["rules"]["max_error_rate"] == 0.1
    assert canary["rules"]["min_requests"] == 50  # the defaults fill the rest
    assert [(a["name"], a["weight"]) for a in found["spec"]["arms"]] == [("baseline", 95.0), ("canary", 5.0)]
    assert found["reason"] == "forest beats logreg offline"


def test_shadow_alone_adds_to_the_current_spec_or_to_a_single_champion(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    found = run_json(capsys, "deploy", "churn", "--shadow", "2", "--shadow-rate", "0.5")
    assert found["spec"]["strategy"] == "single"
    assert found["spec"]["arms"][0]["target"] == "@champion"
    assert (found["spec"]["shadow"], found["spec"]["shadow_rate"]) == ("2", 0.5)

    # A/B with the challenger's arm paused: mirroring it serves no version twice.
    run_json(capsys, "deploy", "churn", "--ab", "champion=100", "challenger=0", "--no-shadow")
    found = run_json(capsys, "deploy", "churn", "--shadow", "@challenger")
    assert found["spec"]["strategy"] == "ab" and found["spec"]["shadow"] == "@challenger"
    found = run_json(capsys, "deploy", "churn", "--single", "2", "--no-shadow")
    assert found["spec"]["arms"] == [{"name": "primary", "target": "2", "weight": 1.0}]
    assert found["spec"]["shadow"] is None


BAD = [
    (("--canary", "7"), "model 'churn' has no version 7 (versions: 1, 2)"),
    (("--ab", "champion=50", "nosuch=50"), "model 'churn' has no alias 'nosuch'"),
    (("--shadow", "@ghost"), "model 'churn' has no alias 'ghost'"),
    (("--single", "9"), "model 'churn' has no version 9"),
    (("--canary", "1"), "a canary of version 1, which its baseline @champion already serves"),
    (("--ab", "champion=50", "1=50"), "arms champion (@champion) and v1 (1) both resolve to version 1"),
    (("--shadow", "@champion"), "the shadow @champion is version 1, which arm primary (@champion) already"),
    (("--ab", "champion=x", "challenger=1"), "invalid --ab arm 'champion=x'"),
    (("--ab", "--canary", "2"), "choose one of --ab and --canary"),
    ((), "nothing to deploy"),
    (("--canary", "2", "--steps", "50,25"), "canary steps must increase"),
    (
        ("--single", "--max-error-rate", "0.1"),
        "canary rules (--max-error-rate, --metric, ...) go with --canary",
    ),
]


def test_bad_deployments_are_refused_with_one_line_and_nothing_is_stored(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, message in BAD:
        code, _, err = run(capsys, "deploy", "churn", *argv)
        assert code == 1, argv
        assert message in err, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err
    assert churn.deployments.get("churn") is None


def test_deploy_of_an_unknown_model_is_one_line(churn: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "deploy", "nope", "--single")
    assert code == 1
    assert "model 'nope' is not registered" in err


def test_history_lists_every_revision_newest_first(
    churn: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    run(capsys, "deploy", "churn", "--single", "--reason", "start")
    run(capsys, "deploy", "churn", "--ab", "champion=90", "challenger=10", "--reason", "try the forest")
    rows = run_json(capsys, "deploy", "history", "churn")
    assert [(r["revision"], r["reason"]) for r in rows] == [(2, "try the forest"), (1, "start")]
    assert rows[0]["actor"] == "tester"
    code, out, _ = run(capsys, "deploy", "history", "churn")
    assert code == 0
    assert "try the forest" in out and "ab champion=@champion 90%" in out


def test_status_shows_arms_canary_progress_decisions_stats_and_shadow_agreement(
    churn: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    # The shadow mirrors the canary's version: allowed on request, to see agreement with the baseline.
    code, _, err = run(
        capsys,
        "deploy",
        "churn",
        "--canary",
        "2",
        "--step-duration",
        "10m",
        "--shadow",
        "@challenger",
        "--allow-same-version",
    )
    assert code == 0 and "warning: the shadow @challenger is version 2" in err, err
    log(churn, "baseline", "1", 95, ago=30)
    log(churn, "canary", "2", 5, ago=30)
    log(churn, "shadow", "2", 95, ago=29, shadow_of="baseline")
    assert run(capsys, "controller", "--once", "--no-monitor")[0] == 0  # records a hold

    report = run_json(capsys, "deploy", "status", "churn", "--window", "1h")

    assert report["revision"] == 1
    assert [(a["name"], a["percent"], a["version"]) for a in report["arms"]] == [
        ("baseline", 95.0, "1"),
        ("canary", 5.0, "2"),
    ]
    canary = report["canary"]
    assert (canary["step_number"], canary["state"]) == (1, "running")
    assert 500 < canary["seconds_left"] <= 600
    (decision,) = report["decisions"]
    assert decision["action"] == "hold" and "left in the step" in decision["reasons"][0]
    stats = {(w["arm"], w["version"]): w["requests"] for w in report["stats"]}
    assert stats == {("baseline", "1"): 95, ("canary", "2"): 5, ("shadow", "2"): 95}
    assert report["shadow"] == {"target": "@challenger", "rate": 1.0, "version": "2", "problem": None}
    assert report["shadow_agreement"]["compared"] == 95
    assert report["shadow_agreement"]["agreement"] == 1.0
    assert report["controller"] is None  # --once released the lease

    code, out, _ = run(capsys, "deploy", "status", "churn")
    assert code == 0
    for text in (
        "canary v2 vs @champion: step 1/4 (5%), running",
        "left in the step",
        "hold",
        "agreement 100.0%",
    ):
        assert text in out, out
    assert "no controller holds the lease" in out


def test_status_of_a_model_without_a_spec_says_it_serves_the_champion(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_json(capsys, "deploy", "status", "churn")
    assert report["deployed"] is False
    assert report["arms"][0]["version"] == "1"
    _, out, _ = run(capsys, "deploy", "status", "churn")
    assert "has no deployment spec: it serves @champion" in out


def test_controller_once_acts_on_a_canary_and_reports_it(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "deploy", "churn", "--canary", "2", "--step-duration", "1s", "--min-requests", "20")
    log(churn, "baseline", "1", 200, ago=0, spread=0.001)  # inside the 1 s step
    log(churn, "canary", "2", 40, ago=0, spread=0.001)
    time.sleep(1.1)

    report = run_json(capsys, "controller", "--once")

    assert report["acting"] is True
    (outcome,) = report["results"]["canary"]
    assert outcome["action"] == "advance", outcome["reasons"]
    assert "monitor" in report["results"]  # the alerts monitor runs in the same controller
    dep = churn.deployments.get("churn")
    assert dep is not None and dep.spec.canary is not None and dep.spec.canary.step == 1
