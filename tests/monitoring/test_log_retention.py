"""Retention of the prediction log: by age and by size, in bounded batches with pauses between them,
counted, on SQLite (with incremental vacuum) and PostgreSQL; what remains stays readable."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from modelward.config import parse_log_retention
from modelward.feedback.ingest import FeedbackStore
from modelward.monitoring.log_insert import write_items
from modelward.monitoring.log_retention import RetentionPolicy, RetentionTask, measure, retention_totals
from modelward.monitoring.prediction_log import PredictionRecord
from modelward.monitoring.prediction_query import export, iter_predictions
from modelward.store import Store
from modelward.store.tables import predictions

NOW = 1_800_000_000.0
HOUR = 3600.0


def _fill(store: Store, n: int, *, start: float, step: float, payload: int = 40, prefix: str = "r") -> None:
    """``n`` rows, one every ``step`` seconds from ``start``, written as the writer writes them."""
    rows = [
        PredictionRecord(
            f"{prefix}-{i}",
            start + i * step,
            "churn",
            "1",
            {"age": i % 90, "note": "x" * payload},
            {"prediction": i % 2, "probabilities": {"0": 0.5, "1": 0.5}},
            1.0,
        )
        for i in range(n)
    ]
    for start_at in range(0, n, 2000):
        assert write_items(store, rows[start_at : start_at + 2000])[3] is None


def _ids(store: Store) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(select(predictions.c.request_id).order_by(predictions.c.id))]


def _count(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(predictions)).scalar_one())


class _Pauses:
    """The task's sleep: counts the pauses, and the rows each delete took before it."""

    def __init__(self) -> None:
        self.pauses = 0

    def __call__(self, seconds: float) -> None:
        self.pauses += 1


def test_the_retention_setting_reads_an_age_a_size_or_both() -> None:
    assert parse_log_retention("7d") == (7 * 86_400, None)
    assert parse_log_retention("20GB") == (None, 20 * 10**9)
    assert parse_log_retention("7d,20GB") == parse_log_retention(" 20gb , 7D ") == (7 * 86_400, 20 * 10**9)
    assert parse_log_retention("512MiB") == (None, 512 * 2**20)
    assert parse_log_retention("") == parse_log_retention("off") == (None, None)
    for bad in ("7", "7x", "7d,1d", "1GB,2GB", "0d", "-1d"):
        with pytest.raises(ValueError, match="retention"):
            parse_log_retention(bad)
    assert not RetentionPolicy.from_spec("").enabled and RetentionPolicy.from_spec("1h").enabled


def test_rows_older_than_the_age_limit_go_in_bounded_batches_with_pauses_between(store: Store) -> None:
    # 12,000 rows a second apart from 3 h (and a second) before NOW: 7,201 are older than 1 h
    _fill(store, 12_000, start=NOW - 3 * HOUR - 1, step=1.0, payload=5)
    deleted: list[tuple[str, int]] = []
    sizes: list[int] = []
    pauses = _Pauses()
    task = RetentionTask(
        store,
        RetentionPolicy(max_age=HOUR),
        batch_rows=1000,
        budget=3600.0,  # the time budget has its own test; a loaded machine must not cut this run short
        sleep=pauses,
        on_deleted=lambda reason, n: deleted.append((reason, n)),
        on_size=sizes.append,
    )
    report = task.run(NOW)
    cutoff = NOW - HOUR
    assert report["deleted"] == {"age": 7201, "size": 0} and not report["more"]
    assert all(reason == "age" and 0 < n <= 1000 for reason, n in deleted)  # no delete took more
    assert sum(n for _, n in deleted) == 7201
    assert pauses.pauses >= 7  # a pause between every two batches
    with store.read() as conn:
        oldest = conn.execute(select(func.min(predictions.c.ts))).scalar_one()
    assert oldest >= cutoff and _count(store) == 12_000 - 7201
    assert retention_totals(store)["deleted"] == {"age": 7201, "size": 0}
    assert sizes and sizes[-1] == measure(store).bytes

    assert task.run(NOW)["deleted"] == {"age": 0, "size": 0}  # nothing more is old
    # what remains reads as before: iterate and export
    frames = list(iter_predictions(store, "churn", chunk_size=2000))
    assert sum(len(f) for f in frames) == 12_000 - 7201


def test_a_run_stops_on_its_time_budget_and_the_next_tick_goes_on(store: Store) -> None:
    _fill(store, 5000, start=NOW - 3 * HOUR, step=1.0, payload=5)
    ticks = itertools.count()
    task = RetentionTask(
        store,
        RetentionPolicy(max_age=HOUR),
        batch_rows=500,
        budget=3.0,
        sleep=lambda s: None,
        clock=lambda: float(next(ticks)),  # each look at the clock: one second later
    )
    first = task.run(NOW)
    assert first["more"] and 0 < first["deleted"]["age"] < 5000
    while task.run(NOW)["more"]:
        pass
    assert _count(store) == 0
    assert retention_totals(store)["deleted"]["age"] == 5000


def test_the_oldest_rows_go_until_the_log_fits_its_size_limit_and_no_further(store: Store) -> None:
    _fill(store, 20_000, start=NOW - HOUR, step=0.1, payload=200)
    before = measure(store)
    limit = before.bytes // 2
    task = RetentionTask(store, RetentionPolicy(max_bytes=limit), batch_rows=2000, sleep=lambda s: None)
    report = task.run(NOW)
    left = _ids(store)
    assert 0 < report["deleted"]["size"] == 20_000 - len(left)
    assert left == [f"r-{i}" for i in range(20_000 - len(left), 20_000)]  # the newest stay
    assert report["bytes"] <= limit
    if store.dialect == "sqlite":  # pages in use: what the other tables hold too
        assert 0.3 * 20_000 <= len(left) <= 0.6 * 20_000
    else:  # the live share of the table, which keeps its size until its space is reused
        assert 0.45 * 20_000 <= len(left) <= 0.5 * 20_000
    # The next run finds the log within its limit and deletes nothing (on PostgreSQL the table's
    # size has not dropped: the estimate is of its live rows).
    assert task.run(NOW)["deleted"]["size"] == 0
    assert len(_ids(store)) == len(left)
    assert retention_totals(store)["deleted"]["size"] == report["deleted"]["size"]


def test_free_pages_go_back_to_the_file_system_on_a_new_sqlite_database(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'modelward.db'}").open()
    store.migrate()
    _fill(store, 20_000, start=NOW - 3 * HOUR, step=0.1, payload=400)
    full = measure(store)
    assert full.auto_vacuum == "incremental"
    RetentionTask(store, RetentionPolicy(max_age=HOUR), sleep=lambda s: None, vacuum_pages=256).run(NOW)
    after = measure(store)
    assert _count(store) < 20_000 // 2
    assert after.free_bytes == 0 and after.file_bytes is not None and full.file_bytes is not None
    assert after.file_bytes < full.file_bytes / 2
    with sqlite3.connect(tmp_path / "modelward.db") as raw:  # the WAL goes into the file, which shrinks
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    assert (tmp_path / "modelward.db").stat().st_size == after.file_bytes
    store.close()


def test_labels_for_purged_predictions_count_as_orphans(store: Store, tmp_path: Path) -> None:
    _fill(store, 100, start=NOW - 2 * HOUR, step=60.0, payload=5)
    RetentionTask(store, RetentionPolicy(max_age=HOUR), sleep=lambda s: None).run(NOW)
    kept = _ids(store)
    purged = [f"r-{i}" for i in range(100) if f"r-{i}" not in kept]
    assert purged and kept
    result = FeedbackStore(store).record(
        [{"request_id": purged[0], "label": 1}, {"request_id": kept[0], "label": 0}]
    )
    assert (result.inserted, result.orphans, result.conflicts) == (2, 1, ())
    out: Any = tmp_path / "kept.csv"
    assert export(store, "churn", out) == len(kept)
