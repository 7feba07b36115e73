"""Reading the prediction log: tail, time parsing, chunked iteration and Parquet/CSV export."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelward.errors import ConfigError
from modelward.monitoring.prediction_query import (
    BASE_COLUMNS,
    count_predictions,
    export,
    iter_predictions,
    parse_since,
    resolve_format,
    tail,
)
from modelward.store import Store
from modelward.store.tables import predictions

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def row(i: int, *, model: str = "churn", **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "request_id": f"r-{i}",
        "ts": T0 + 60 * i,
        "model": model,
        "version": "1" if i % 2 else "2",
        "arm": "champion" if i % 2 else None,
        "routing_key": None,
        "inputs": json.dumps({"age": 20 + i, "plan": "ab"[i % 2]}),
        "outputs": json.dumps(
            {"prediction": i % 2, "probabilities": {"0": 0.5 - i / 100, "1": 0.5 + i / 100}}
        ),
        "latency_ms": 1.0 + i,
    }
    values.update(overrides)
    return values


def insert(store: Store, rows: list[dict[str, Any]]) -> None:
    with store.write() as conn:
        conn.execute(predictions.insert(), rows)


@pytest.fixture
def logged(store: Store) -> Store:
    """30 predictions of churn, one a minute from T0, interleaved with 10 of another model."""
    rows = []
    for i in range(30):
        rows.append(row(i))
        if i % 3 == 0:
            rows.append(row(100 + i, model="other"))
    insert(store, rows)
    return store


def test_tail_returns_the_newest_rows_oldest_first(logged: Store) -> None:
    rows = tail(logged, "churn", limit=5)
    assert [r["request_id"] for r in rows] == [f"r-{i}" for i in range(25, 30)]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    last = rows[-1]
    assert last["ts"] == "2026-01-01T00:29:00.000Z"
    assert last["inputs"] == {"age": 49, "plan": "b"}
    assert last["outputs"]["probabilities"] == {"0": pytest.approx(0.21), "1": pytest.approx(0.79)}
    assert (last["model"], last["version"], last["arm"], last["routing_key"]) == (
        "churn",
        "1",
        "champion",
        None,
    )
    assert last["latency_ms"] == 30.0
    assert tail(logged, "nobody") == []


def test_tail_after_id_pages_forward_without_missing_rows(logged: Store) -> None:
    first = tail(logged, "churn", limit=3)
    assert tail(logged, "churn", after_id=first[-1]["id"]) == []
    insert(logged, [row(i) for i in range(30, 36)] + [row(200, model="other")])
    seen: list[str] = []
    after = first[-1]["id"]
    while page := tail(logged, "churn", limit=4, after_id=after):
        seen += [r["request_id"] for r in page]
        after = page[-1]["id"]
    assert seen == [f"r-{i}" for i in range(30, 36)]


def test_parse_since_reads_durations_ago_and_iso_dates() -> None:
    now = 1_000_000.0
    assert parse_since("30s", now=now) == now - 30
    assert parse_since("15m", now=now) == now - 900
    assert parse_since("2h", now=now) == now - 7_200
    assert parse_since("7d", now=now) == now - 7 * 86_400
    assert parse_since("1.5h", now=now) == now - 5_400
    assert parse_since("2026-01-01") == T0
    assert parse_since("2026-01-01T00:30:00") == T0 + 1_800  # naive means UTC
    assert parse_since("2026-01-01T00:30:00Z") == T0 + 1_800
    assert parse_since("2026-01-01T02:30:00+02:00") == T0 + 1_800
    assert abs(parse_since("1h") - (datetime.now(UTC).timestamp() - 3_600)) < 5


@pytest.mark.parametrize("text", ["", "yesterday", "15x", "-3h", "2026-13-01", "h2"])
def test_parse_since_rejects_what_it_cannot_read_with_a_clear_message(text: str) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .* as a time: use a duration ago such as 30s"):
        parse_since(text)


def test_iter_predictions_pages_in_chunks_and_flattens_columns(logged: Store) -> None:
    chunks = list(iter_predictions(logged, "churn", chunk_size=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 2]
    frame = pd.concat(chunks, ignore_index=True)
    assert list(frame.columns) == [
        *BASE_COLUMNS,
        "input.age",
        "input.plan",
        "output.prediction",
        "output.probability.0",
        "output.probability.1",
    ]
    assert list(frame["request_id"]) == [f"r-{i}" for i in range(30)]
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert frame["ts"].iloc[1] == pd.Timestamp("2026-01-01T00:01:00Z")
    assert frame["output.probability.1"].iloc[3] == pytest.approx(0.53)
    assert list(iter_predictions(logged, "nobody")) == []


def test_since_and_until_select_a_half_open_window(logged: Store) -> None:
    frames = list(iter_predictions(logged, "churn", since=T0 + 600, until=T0 + 1_200, chunk_size=4))
    got = pd.concat(frames)["request_id"].tolist()
    assert got == [f"r-{i}" for i in range(10, 20)]
    assert count_predictions(logged, "churn", since=T0 + 600, until=T0 + 1_200) == 10
    assert count_predictions(logged, "churn") == 30
    assert count_predictions(logged, "other") == 10


def test_export_parquet_round_trips_in_chunks(logged: Store, tmp_path: Path) -> None:
    progress: list[int] = []
    target = tmp_path / "out" / "churn.parquet"
    assert export(logged, "churn", target, chunk_size=8, progress=progress.append) == 30
    assert progress == [8, 8, 8, 6]
    back = pd.read_parquet(target)
    expected = pd.concat(iter_predictions(logged, "churn"), ignore_index=True)
    assert list(back.columns) == list(expected.columns)
    assert back["request_id"].tolist() == expected["request_id"].tolist()
    assert back["ts"].tolist() == expected["ts"].tolist()
    assert back["arm"].isna().tolist()[:2] == [True, False]
    assert back["arm"].iloc[1] == "champion"
    for column in ("input.age", "output.prediction", "output.probability.0", "output.probability.1"):
        assert back[column].tolist() == pytest.approx(expected[column].astype(float).tolist())
    assert back["input.plan"].tolist() == expected["input.plan"].tolist()
    assert not list(tmp_path.glob("out/.*partial"))


def test_export_csv_round_trips_with_one_header(logged: Store, tmp_path: Path) -> None:
    target = tmp_path / "churn.csv"
    assert export(logged, "churn", target, chunk_size=8, since=T0 + 300) == 25
    text = target.read_text()
    assert text.count("request_id") == 1
    back = pd.read_csv(target)
    assert back["request_id"].tolist() == [f"r-{i}" for i in range(5, 30)]
    assert back["output.probability.1"].tolist() == pytest.approx([0.5 + i / 100 for i in range(5, 30)])
    assert pd.to_datetime(back["ts"], utc=True).iloc[0] == pd.Timestamp("2026-01-01T00:05:00Z")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_keeps_the_first_chunks_columns_when_later_rows_differ(
    store: Store, tmp_path: Path, fmt: str, caplog: pytest.LogCaptureFixture
) -> None:
    insert(store, [row(i, inputs='{"age":30,"plan":"a"}') for i in range(3)])
    insert(store, [row(i, inputs='{"age":30.5,"score":7}') for i in range(3, 6)])  # no plan, new score
    insert(store, [row(i, inputs='{"age":"unknown","plan":1}') for i in range(6, 9)])  # other kinds
    target = tmp_path / f"x.{fmt}"
    assert export(store, "churn", target, chunk_size=3) == 9
    back = pd.read_parquet(target) if fmt == "parquet" else pd.read_csv(target)
    assert "input.score" not in back.columns
    assert back["input.plan"].isna().tolist() == [False] * 3 + [True] * 3 + [False] * 3
    assert back["input.age"].iloc[3] == pytest.approx(30.5) or back["input.age"].iloc[3] == "30.5"
    assert any("input.score" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_export_with_no_rows_writes_nothing(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "exports" / "empty.parquet"
    assert export(store, "churn", target) == 0
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_export_format_comes_from_the_suffix_or_is_named() -> None:
    assert resolve_format(Path("a.parquet"), None) == "parquet"
    assert resolve_format(Path("a.PQ"), None) == "parquet"
    assert resolve_format(Path("a.csv"), None) == "csv"
    assert resolve_format(Path("a.data"), "csv") == "csv"
    with pytest.raises(ConfigError, match="cannot tell the export format"):
        resolve_format(Path("a.json"), None)
    with pytest.raises(ConfigError, match="unknown export format 'xlsx'"):
        resolve_format(Path("a.csv"), "xlsx")
