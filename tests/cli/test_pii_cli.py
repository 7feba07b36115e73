"""`modelward pii scan` as CI meets it: exit 0 when clean, 1 when something is found, 2 when the
file cannot be read; JSON for scripts; the prediction log's inputs scanned over a window."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from tests.governance.test_pii_scan import planted

from modelward.cli import main
from modelward.config import Settings
from modelward.registry import Registry
from modelward.store import Store
from modelward.store.tables import predictions


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scan_exits_1_with_counts_and_masked_examples_when_pii_is_found(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "customers.csv"
    planted().to_csv(path, index=False)
    code, out, _ = run(capsys, "pii", "scan", str(path), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["totals"] == {"email": 9, "phone": 12, "card": 6, "iban": 6}
    contact = next(c for c in report["columns"] if c["column"] == "contact")
    assert contact["examples"]["email"][0] == "j***@e***.com"
    assert "john.doe@example.com" not in out
    code, out, _ = run(capsys, "pii", "scan", str(path))
    assert code == 1 and "j***@e***.com" in out and "contact" in out and "john.doe" not in out


def test_scan_exits_0_on_clean_data(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "clean.parquet"
    planted()[["customer_id", "amount"]].to_parquet(path)
    code, out, _ = run(capsys, "pii", "scan", str(path), "--sample", "5")
    assert code == 0 and "no personal data found in 5 rows" in out


def test_scan_exits_2_when_the_file_cannot_be_read(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 but not really")
    code, out, err = run(capsys, "pii", "scan", str(tmp_path / "broken.parquet"))
    assert code == 2 and out == "" and err.startswith("error: cannot read") and len(err.splitlines()) == 1
    code, _, err = run(capsys, "pii", "scan", str(tmp_path / "missing.csv"))
    assert code == 2 and "no such file" in err


def test_scan_of_the_prediction_log_reads_logged_inputs_in_the_window(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.ensure_home()
    store = Store(settings.resolved_database_url).open()
    store.migrate()
    now = time.time()
    rows = [
        {"age": 40, "email": "old@example.com", "ts": now - 3 * 86_400},
        {"age": 41, "email": "new@example.com", "ts": now - 60},
        {"age": 42, "email": None, "ts": now - 30},
    ]
    with store.write() as conn:
        for i, r in enumerate(rows):
            conn.execute(
                predictions.insert().values(
                    request_id=f"r{i}",
                    ts=r["ts"],
                    model="churn",
                    version="1",
                    arm=None,
                    routing_key=None,
                    inputs=json.dumps({"age": r["age"], "email": r["email"]}),
                    outputs=json.dumps({"prediction": 0}),
                    latency_ms=1.0,
                )
            )
    store.close()
    code, out, _ = run(capsys, "pii", "scan", "--predictions", "churn", "--window", "1d", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["rows"] == 2 and report["totals"] == {"email": 1}
    # Nothing in the window of a model the registry does not know: a typo, not a clean log.
    code, out, err = run(capsys, "pii", "scan", "--predictions", "churm", "--window", "1d", "--json")
    assert code == 1 and out == "" and "churm" in err


def test_scan_needs_a_file_or_a_model(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "pii", "scan")
    assert code == 1 and "give either a FILE or --predictions NAME" in err


def test_register_from_mlflow_warns_or_refuses_on_pii_in_the_reference(
    registry: Registry,
    churn_models: dict,
    churn_frame: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow
    import mlflow.sklearn

    ref = tmp_path / "ref.csv"
    churn_frame.assign(email=[f"u{i}@example.com" for i in range(len(churn_frame))]).to_csv(ref, index=False)
    with registry.mlflow_context(), mlflow.start_run() as r:
        mlflow.sklearn.log_model(
            churn_models["logreg"],
            name="model",
            serialization_format="skops",
            skops_trusted_types=[],
        )
    argv = ["register", "--from-mlflow", f"runs:/{r.info.run_id}/model", "--name", "imported"]
    argv += ["--reference", str(ref), "--target", "churn"]
    monkeypatch.setenv("MODELWARD_PII_ON_REGISTER", "refuse")
    code, out, err = run(capsys, *argv)
    assert code == 1 and "not registering imported" in err and "MODELWARD_PII_ON_REGISTER=refuse" in err
    monkeypatch.delenv("MODELWARD_PII_ON_REGISTER")
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    assert json.loads(out)["version"] == "1"  # the refused attempt made no version
    assert "warning: the training data of imported holds personal data: email 2000 (column email)" in err
    code, out, _ = run(capsys, "show", "imported:1", "--quick", "--json")
    assert json.loads(out)["pii"]["totals"] == {"email": 2000}
