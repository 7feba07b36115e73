"""`modelward predictions tail|export` as a user meets them: tables, JSON lines, files, one-line errors."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelward.cli import main, predictions_cmds
from modelward.config import Settings
from modelward.store import Store
from modelward.store.tables import predictions


def row(i: int, ts: float, *, model: str = "churn") -> dict[str, Any]:
    return {
        "request_id": f"req-{i}",
        "ts": ts,
        "model": model,
        "version": "3",
        "arm": "canary" if i % 2 else "stable",
        "routing_key": None,
        "inputs": json.dumps({"age": 40 + i}),
        "outputs": json.dumps({"prediction": i % 2, "probabilities": {"0": 0.4, "1": 0.6}}),
        "latency_ms": 2.25,
    }


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    settings.ensure_home()
    s = Store(settings.resolved_database_url).open()
    s.migrate()
    yield s
    s.close()


def insert(store: Store, rows: list[dict[str, Any]]) -> None:
    with store.write() as conn:
        conn.execute(predictions.insert(), rows)


@pytest.fixture
def logged(store: Store) -> Store:
    """8 predictions of churn two days ago, then 4 in the last hour."""
    now = time.time()
    insert(store, [row(i, now - 2 * 86_400 + i) for i in range(8)])
    insert(store, [row(i, now - 600 + i) for i in range(8, 12)])
    return store


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tail_prints_a_table_of_the_newest_predictions(
    logged: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "predictions", "tail", "churn", "-n", "3")
    assert code == 0
    assert next(line for line in out.splitlines() if "req-" in line).count("req-9") == 1
    for rid in ("req-9", "req-10", "req-11"):
        assert rid in out
    assert "req-8" not in out
    assert "canary" in out
    assert "2.2 ms" in out or "2.3 ms" in out
    assert out.index("req-9") < out.index("req-11")


def test_tail_json_prints_one_object_per_line(logged: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "predictions", "tail", "churn", "--json", "-n", "5")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["request_id"] for r in rows] == [f"req-{i}" for i in range(7, 12)]
    assert rows[-1]["outputs"] == {"prediction": 1, "probabilities": {"0": 0.4, "1": 0.6}}
    assert rows[-1]["inputs"] == {"age": 51}
    assert rows[-1]["ts"].endswith("Z")


def registered(settings: Settings, name: str) -> None:
    """``name`` in the registry, without a version: enough for the CLI to know the model."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=settings.resolved_tracking_uri).create_registered_model(name)


def test_tail_of_a_model_with_no_predictions_says_so_and_succeeds(
    store: Store, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    registered(settings, "ghost")
    code, out, err = run(capsys, "predictions", "tail", "ghost")
    assert code == 0
    assert out == ""
    assert "no predictions logged for 'ghost' yet" in err


def test_tail_follow_prints_new_predictions_until_interrupted(
    logged: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    polls: list[float] = []

    def fake_wait(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:
            insert(logged, [row(20, time.time()), row(21, time.time(), model="other")])
        elif len(polls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(predictions_cmds, "_wait", fake_wait)
    code, out, _ = run(
        capsys, "predictions", "tail", "churn", "-n", "2", "--follow", "--json", "--interval", "0.5"
    )
    assert code == 0
    assert [json.loads(line)["request_id"] for line in out.splitlines()] == ["req-10", "req-11", "req-20"]
    assert polls == [0.5, 0.5, 0.5]

    polls.clear()
    code, out, _ = run(capsys, "predictions", "tail", "churn", "-n", "1", "--follow")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("time (UTC)")
    assert "req-20" in lines[1]
    assert "req-20" in lines[2]
    assert "req-21" not in out


def test_export_since_writes_the_recent_predictions_to_parquet(
    logged: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "recent.parquet"
    code, out, _ = run(capsys, "predictions", "export", "churn", "--output", str(target), "--since", "1h")
    assert code == 0
    assert out.strip() == f"exported 4 predictions of churn to {target}"
    back = pd.read_parquet(target)
    assert back["request_id"].tolist() == ["req-8", "req-9", "req-10", "req-11"]
    assert back["output.probability.1"].tolist() == [0.6] * 4


def test_export_csv_with_json_summary_and_an_until_bound(
    logged: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "old.data"
    code, out, _ = run(
        capsys,
        "predictions",
        "export",
        "churn",
        "-o",
        str(target),
        "--format",
        "csv",
        "--until",
        "1d",
        "--json",
    )
    assert code == 0
    assert json.loads(out) == {
        "model": "churn",
        "path": str(target),
        "format": "csv",
        "rows": 8,
        "excluded_without_consent": 0,
        "labeled": False,
    }
    assert pd.read_csv(target)["request_id"].tolist() == [f"req-{i}" for i in range(8)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterday"], "--since: cannot read 'yesterday' as a time"),
        (["--since", "1h", "--until", "2h"], "--until must be later than --since"),
        (["--format", "xlsx"], "unknown export format 'xlsx'"),
    ],
)
def test_export_mistakes_are_one_line_errors(
    logged: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "predictions", "export", "churn", "-o", str(tmp_path / "x.parquet"), *argv)
    assert code == 1
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "x.parquet").exists()


def test_export_with_nothing_to_export_fails_and_writes_nothing(
    logged: Store, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registered(settings, "ghost")
    target = tmp_path / "none.parquet"
    code, _, err = run(capsys, "predictions", "export", "ghost", "-o", str(target))
    assert code == 1
    assert "nothing to export: no predictions of 'ghost' are logged" in err
    code, _, err = run(
        capsys,
        "predictions",
        "export",
        "churn",
        "-o",
        str(target),
        "--since",
        "2001-01-01",
        "--until",
        "2001-01-02",
    )
    assert code == 1
    assert "in that time window" in err
    assert not target.exists()
