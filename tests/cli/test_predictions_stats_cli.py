"""`modelward predictions stats` and `modelward predictions vacuum` as a user meets them."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from tests.cli.test_predictions_cli import insert, row, run

from modelward.config import Settings
from modelward.monitoring.log_retention import RetentionPolicy, RetentionTask
from modelward.store import Store


def test_stats_of_an_empty_log_and_after_retention(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELWARD_LOG_RETENTION", "1h")
    code, out, err = run(capsys, "predictions", "stats")
    assert code == 0, err
    assert "log: empty" in out and "retention: 1h; deleted 0 rows by age and 0 by size" in out
    assert "0 lost" in out

    store = Store(settings.resolved_database_url).open()
    now = time.time()
    insert(store, [row(i, now - 7200 + i) for i in range(6)] + [row(i, now) for i in range(6, 10)])
    RetentionTask(store, RetentionPolicy(max_age=3600), sleep=lambda s: None).run(now)
    store.close()
    code, out, _ = run(capsys, "predictions", "stats", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["log"]["rows"] == 4
    assert summary["retention"]["deleted"] == {"age": 6, "size": 0}
    assert summary["retention"]["policy"] == "1h" and summary["retention"]["last_run"]
    assert summary["log"]["size"]["auto_vacuum"] == "incremental"
    assert summary["writers"]["lost"] == 0 and summary["writers"]["crashes"] == []


def test_vacuum_converts_an_older_database_to_incremental_vacuum_keeping_its_rows(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.ensure_home()
    path = settings.home / "modelward.db"
    with sqlite3.connect(path) as raw:  # made before this version: no auto_vacuum
        raw.execute("CREATE TABLE before_us (x)")
    store = Store(settings.resolved_database_url).open()
    store.migrate()
    insert(store, [row(i, time.time()) for i in range(3)])
    store.close()
    code, out, _ = run(capsys, "predictions", "stats", "--json")
    assert json.loads(out)["log"]["size"]["auto_vacuum"] == "none"

    code, out, err = run(capsys, "predictions", "vacuum", "--yes")
    assert code == 0, err
    assert "now uses incremental vacuum" in out
    code, out, _ = run(capsys, "predictions", "stats", "--json")
    summary = json.loads(out)
    assert summary["log"]["size"]["auto_vacuum"] == "incremental" and summary["log"]["rows"] == 3
    code, out, _ = run(capsys, "predictions", "vacuum", "--yes")
    assert code == 0 and "already uses incremental vacuum" in out
