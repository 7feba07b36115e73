"""`modelward export NAME --labeled`: the logged inputs that have a label, ready to retrain on."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelward.cli import main
from modelward.config import Settings
from modelward.feedback.ingest import FeedbackStore
from modelward.monitoring.prediction_query import iter_predictions
from modelward.store import Store
from modelward.store.tables import predictions


def row(
    i: int, ts: float, *, arm: str = "stable", consent: bool = True, rid: str | None = None
) -> dict[str, Any]:
    return {
        "request_id": rid or f"req-{i}",
        "ts": ts,
        "model": "churn",
        "version": "2" if arm == "canary" else "1",
        "arm": arm,
        "routing_key": None,
        "inputs": json.dumps({"age": 40 + i, "geography": "France"} if consent else {}),
        "outputs": json.dumps({"prediction": i % 2, "probabilities": {"0": 0.3, "1": 0.7}}),
        "latency_ms": 1.5,
        "consent": consent,
    }


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    settings.ensure_home()
    s = Store(settings.resolved_database_url).open()
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def logged(store: Store) -> Store:
    """12 predictions of churn in the last hour (even ids on the stable arm, odd on the canary), a
    shadow copy of req-0, and req-20 served without consent; labels for req-0..5, req-20 and an
    orphan."""
    now = time.time() - 600
    rows = [row(i, now + i, arm="canary" if i % 2 else "stable") for i in range(12)]
    rows.append(row(0, now + 0.5, arm="shadow", rid="req-0"))
    rows.append(row(20, now + 20, consent=False))
    with store.write() as conn:
        conn.execute(predictions.insert(), rows)
    labels = [{"request_id": f"req-{i}", "label": i % 2} for i in range(6)]
    labels += [{"request_id": "req-20", "label": 1}, {"request_id": "never-served", "label": 0}]
    FeedbackStore(store).record(labels)
    return store


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_labeled_export_holds_each_labelled_request_once_with_its_label_version_and_arm(
    logged: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "train.parquet"
    code, out, err = run(
        capsys, "export", "churn", "--labeled", "--since", "1d", "-o", str(out_file), "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["rows"], summary["labeled"], summary["excluded_without_consent"]) == (6, True, 1)
    frame = pd.read_parquet(out_file)
    assert sorted(frame["request_id"]) == sorted(f"req-{i}" for i in range(6))  # the shadow copy left out
    assert "shadow" not in set(frame["arm"])
    by_id = frame.set_index("request_id")
    for i in range(6):
        got = by_id.loc[f"req-{i}"]
        assert got["label"] == i % 2 and got["label_value"] == float(i % 2)
        assert got["input.age"] == 40 + i
        assert (got["version"], got["arm"]) == (("2", "canary") if i % 2 else ("1", "stable"))


def test_the_same_export_is_the_prediction_log_export_with_label_columns(
    logged: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain, labeled = tmp_path / "all.csv", tmp_path / "labeled.csv"
    assert run(capsys, "predictions", "export", "churn", "-o", str(plain))[0] == 0
    assert run(capsys, "predictions", "export", "churn", "--labeled", "-o", str(labeled))[0] == 0
    everything, with_labels = pd.read_csv(plain), pd.read_csv(labeled)
    assert len(everything) == 13  # 12 served and the shadow copy; the unconsented row left out
    assert list(with_labels.columns) == [*everything.columns, "label", "label_value"]


def test_labels_come_in_chunks_without_holding_the_log(logged: Store) -> None:
    chunks = list(iter_predictions(logged, "churn", chunk_size=4, labeled=True))
    assert [len(c) for c in chunks] == [4, 2]
    assert [c["label"].tolist() for c in chunks] == [[0, 1, 0, 1], [0, 1]]


def test_nothing_labelled_yet_says_so_and_a_typo_is_an_unknown_model(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with store.write() as conn:
        conn.execute(predictions.insert(), [row(1, time.time() - 60)])
    code, _, err = run(capsys, "export", "churn", "--labeled", "-o", str(tmp_path / "x.csv"))
    assert code == 1 and "has a label yet" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()
    code, _, err = run(capsys, "export", "churnn", "--labeled", "-o", str(tmp_path / "x.csv"))
    assert code == 1 and "model 'churnn' is not registered" in err
