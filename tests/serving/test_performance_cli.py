"""`modelward performance churn --json` on requests served by a real server equals scikit-learn by hand."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

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


def test_performance_matches_scikit_learn_on_served_and_labelled_requests(
    clean_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = sys.modules["churn_generate"].generate(400, seed=21).drop(columns=["customer_id"])
    truth = frame.pop("churn").to_numpy()
    ids = [f"perf-{i}" for i in range(len(frame))]
    server = start_server(clean_home, "churn", "--reload-interval", "0")
    try:
        with server.client() as c:
            r = c.post(
                "/models/churn/predict", json={"instances": frame.to_dict("records"), "request_ids": ids}
            )
            assert r.status_code == 200, r.text
            answered = r.json()["predictions"]
            wait_logged(server, ids)
            labelled = list(range(0, len(ids), 4)) + list(range(1, len(ids), 4))  # half of them
            items = [{"request_id": ids[i], "label": int(truth[i])} for i in labelled]
            posted = c.post("/feedback", json={"items": items})
            assert posted.status_code == 200 and posted.json()["inserted"] == len(items)
    finally:
        server.stop()

    code = main(["performance", "churn", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)

    y = truth[labelled]
    pred = np.array([answered[i]["prediction"] for i in labelled])
    score = np.array([answered[i]["probabilities"]["1"] for i in labelled])
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, score),
        "log_loss": skm.log_loss(y, np.c_[1 - score, score]),
        "brier": skm.brier_score_loss(y, score),
    }
    assert (report["n_predictions"], report["n_labelled"]) == (len(ids), len(labelled))
    assert report["coverage"] == pytest.approx(0.5)
    [group] = report["groups"]
    assert (group["version"], group["arm"]) == ("1", "primary")
    got = {name: m["value"] for name, m in group["metrics"].items()}
    assert got == pytest.approx(expected, abs=1e-9)
    estimate = group["estimated"]["accuracy"]
    assert estimate["value"] == pytest.approx(np.mean([max(a["probabilities"].values()) for a in answered]))

    # the table shows realized and estimated side by side
    assert main(["performance", "churn", "--window", "2h"]) == 0
    table = capsys.readouterr().out
    assert "realized" in table and "estimated" in table and f"{expected['accuracy']:.4f}" in table


def test_calibrate_records_a_holdout_calibration(
    clean_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holdout = sys.modules["churn_generate"].generate(1_000, seed=22).drop(columns=["customer_id"])
    path = clean_home / "holdout.parquet"
    pd.DataFrame(holdout).to_parquet(path)
    code = main(["calibrate", "churn:2", "--data", str(path), "--target", "churn", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    run = json.loads(out)
    assert run["ref"] == "churn:2" and run["calibration"]["source"] == "holdout"
    assert run["calibration"]["n"] == 1_000
    assert main(["audit", "log", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert any(e["action"] == "calibrate" and e["subject"] == "churn:2" for e in events)
    assert main(["calibrate", "churn:2", "--data", str(path), "--target", "nope"]) == 1
    assert "target column 'nope'" in capsys.readouterr().err
