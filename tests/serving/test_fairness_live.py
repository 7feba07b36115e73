"""`modelward fairness NAME --window` on traffic a real server answered and logged, with posted feedback."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from modelward.cli import main
from tests.serving.conftest import start_server
from tests.serving.test_feedback_routes import wait_logged


@pytest.fixture
def clean_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The served home with no logged predictions or labels, and the CLI pointed at it."""
    with sqlite3.connect(home / "modelward.db") as db:
        db.execute("DELETE FROM modelward_predictions")
        db.execute("DELETE FROM modelward_feedback")
    for key in list(os.environ):
        if key.startswith(("MODELWARD_", "MLFLOW_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MODELWARD_HOME", str(home))
    monkeypatch.setenv("MODELWARD_ACTOR", "tester")
    return home


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_live_fairness_joins_logged_traffic_with_feedback_and_side_groups(
    clean_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = sys.modules["churn_generate"].generate(600, seed=31).drop(columns=["customer_id"])
    truth = frame.pop("churn").to_numpy()
    ids = [f"fair-{i}" for i in range(len(frame))]
    region = np.where(np.arange(len(frame)) % 3 == 0, "north", "south")
    pd.DataFrame({"request_id": ids, "region": region}).to_csv(tmp_path / "side.csv", index=False)
    labelled = np.arange(len(ids)) % 2 == 0
    server = start_server(clean_home, "churn", "--reload-interval", "0")
    try:
        with server.client() as c:
            r = c.post(
                "/models/churn/predict", json={"instances": frame.to_dict("records"), "request_ids": ids}
            )
            assert r.status_code == 200, r.text
            answered = r.json()["predictions"]
            wait_logged(server, ids)

            # before any feedback: selection rates and parity only, and the report says so
            code, out, err = run(
                capsys, "fairness", "churn", "--window", "1h", "--sensitive", "gender", "--json"
            )
            assert code == 0, err
            unlabelled = json.loads(out)
            items = [{"request_id": ids[i], "label": int(truth[i])} for i in np.flatnonzero(labelled)]
            posted = c.post("/feedback", json={"items": items})
            assert posted.status_code == 200 and posted.json()["inserted"] == len(items)
    finally:
        server.stop()

    predicted = np.array([a["prediction"] for a in answered])
    gender = frame["gender"].to_numpy()
    expected_dp = demographic_parity_difference(truth, predicted, sensitive_features=gender)
    assert unlabelled["labelled"] == 0 and not unlabelled["has_labels"]
    assert any("no labels" in note for note in unlabelled["notes"])
    assert unlabelled["features"][0]["equalized_odds_difference"] is None
    assert abs(unlabelled["features"][0]["demographic_parity_difference"] - expected_dp) < 1e-9

    code, out, err = run(capsys, "fairness", "churn", "--window", "1h", "--sensitive", "gender", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["model"], report["version"]) == ("churn", "1")
    assert report["rows"] == len(ids) and report["labelled"] == int(labelled.sum())
    assert report["data"]["source"] == "live" and report["data"]["groups_from"] == "logged inputs"
    feature = report["features"][0]
    assert abs(feature["demographic_parity_difference"] - expected_dp) < 1e-9
    expected_eo = equalized_odds_difference(
        truth[labelled], predicted[labelled], sensitive_features=gender[labelled]
    )
    assert abs(feature["equalized_odds_difference"] - expected_eo) < 1e-9
    assert sum(g["labelled"] for g in feature["groups"]) == int(labelled.sum())
    assert all(g["auc"] is not None for g in feature["groups"])

    # group columns that the model never saw: from a side file joined by request id
    side = str(tmp_path / "side.csv")
    code, out, err = run(
        capsys, "fairness", "churn", "--window", "1h", "--sensitive", "region", "--groups", side, "--json"
    )
    assert code == 0, err
    by_region = json.loads(out)
    assert by_region["data"]["groups_from"].startswith("side.csv")
    expected_region = demographic_parity_difference(truth, predicted, sensitive_features=region)
    assert abs(by_region["features"][0]["demographic_parity_difference"] - expected_region) < 1e-9

    code, out, err = run(capsys, "show", "churn:1", "--quick", "--json")
    assert json.loads(out)["fairness"]["source"] == "live"

    # a column neither logged nor given, and a window with no traffic, are one-line errors
    code, _, err = run(capsys, "fairness", "churn", "--window", "1h", "--sensitive", "region")
    assert code == 1 and "--groups" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(
        capsys, "fairness", "churn", "--window", "1h", "--sensitive", "gender", "--version", "2"
    )
    assert code == 1 and "no served predictions" in err
    code, _, err = run(capsys, "fairness", "churn", "--window", "soon", "--sensitive", "gender")
    assert code == 1 and "cannot read the window" in err
