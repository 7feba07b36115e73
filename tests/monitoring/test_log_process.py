"""The prediction log's writer process: same rows as the writer thread, losses counted when it dies,
replaced when it is gone, and gone when the server is."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from tests.monitoring.test_prediction_log import wait_until, write_lock_held

from modelward.monitoring.log_rows import PredictionRecord, RecordBatch
from modelward.monitoring.prediction_log import LogStats, PredictionLogger
from modelward.store import Store
from modelward.store.tables import predictions


def _records(n: int, *, prefix: str, start: int = 0) -> list[PredictionRecord]:
    return [
        PredictionRecord(
            request_id=f"{prefix}-{i}",
            ts=1_700_000_000.0 + i,
            model="churn",
            version="1",
            inputs={"age": 30 + i % 40, "plan": "b"},
            outputs={"prediction": i % 2, "probabilities": {"0": 0.25, "1": 0.75}},
            latency_ms=1.5,
            arm="champion",
        )
        for i in range(start, start + n)
    ]


def _batch(n: int, *, prefix: str) -> RecordBatch:
    rng = np.random.default_rng(3)
    return RecordBatch(
        model="churn",
        version="2",
        arm="challenger",
        ts=1_700_000_100.0,
        latency_ms=[0.5 * i for i in range(n)],
        request_ids=[f"{prefix}-b{i}" for i in range(n)],
        inputs={
            "tenure": rng.random(n).astype(np.float32),
            "plan": np.array(["a", "b"] * (n // 2), dtype=object),
        },
        predictions=np.array(["no", "yes"] * (n // 2), dtype=object),
        probabilities=rng.random((n, 2)).astype(np.float32),
        classes=["no", "yes"],
        routing_keys="user-9",
    )


def _rows(store: Store, prefix: str) -> list[tuple[Any, ...]]:
    columns = [c for c in predictions.c if c.name not in ("id", "request_id")]
    with store.read() as conn:
        query = select(predictions.c.request_id, *columns).order_by(predictions.c.id)
        rows = conn.execute(query).all()
    return [(r[0].split("-", 1)[1], *r[1:]) for r in rows if r[0].startswith(prefix + "-")]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"  # exited, waiting to be reaped by whoever adopted it


def test_the_writer_process_stores_exactly_what_the_writer_thread_stores(store: Store) -> None:
    for prefix, process in (("thread", False), ("process", True)):
        logger = PredictionLogger(store, batch_size=100, flush_interval=0.02, process=process).start()
        assert logger.process is process
        logger.submit(_records(150, prefix=prefix))
        logger.submit_batch(_batch(40, prefix=prefix))
        logger.close()
        assert logger.stats == LogStats(produced=190, written=190, dropped=0, queued=0, sampled_out=0)
    thread_rows, process_rows = _rows(store, "thread"), _rows(store, "process")
    assert len(process_rows) == 190
    assert process_rows == thread_rows


def test_a_writer_process_killed_mid_batch_costs_that_batch_only_and_is_replaced(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="modelward.prediction_log")
    store = Store(store_url, busy_timeout_ms=30_000).open()
    store.migrate()
    logger = PredictionLogger(store, batch_size=50, flush_interval=0.02, process=True).start()
    logger.submit(_records(30, prefix="before"))
    assert logger.flush(20)
    child = logger._child
    assert child is not None and child.alive()

    with write_lock_held(store_url):  # the child takes the next batch and waits for the lock
        logger.submit(_records(20, prefix="lost"))
        wait_until(lambda: logger._rows == 0 and logger.stats.queued == 20)
        time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)
        assert logger.flush(20)
    assert logger.stats.dropped == 20

    logger.submit(_records(25, prefix="after"))  # a new child writes these
    assert logger.flush(20)
    replaced = logger._child
    assert replaced is not None and replaced.pid != child.pid
    os.kill(replaced.pid, signal.SIGKILL)  # between batches: found dead, replaced, nothing lost
    wait_until(lambda: not replaced.alive())
    logger.submit(_records(5, prefix="again"))
    assert logger.flush(20)
    logger.close()

    assert logger.stats == LogStats(produced=80, written=60, dropped=20, queued=0, sampled_out=0)
    assert [len(_rows(store, p)) for p in ("before", "lost", "after", "again")] == [30, 0, 25, 5]
    messages = [r.getMessage() for r in caplog.records if r.name == "modelward.prediction_log"]
    assert any("killed by signal 9" in m and "dropped 20 records" in m for m in messages), messages
    assert any("writing again; 20 records were dropped" in m for m in messages), messages
    store.close()


def test_a_store_that_is_down_costs_drops_not_errors_in_the_writer_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="modelward.prediction_log")
    store = Store(f"sqlite:///{tmp_path / 'never-migrated.db'}").open()  # no table to write to
    logger = PredictionLogger(store, flush_interval=0.02, process=True).start()
    logger.submit(_records(7, prefix="x"))
    assert logger.flush(20)
    logger.close()
    assert logger.stats == LogStats(produced=7, written=0, dropped=7, queued=0, sampled_out=0)
    messages = [r.getMessage() for r in caplog.records if r.name == "modelward.prediction_log"]
    assert any("no such table: modelward_predictions" in m for m in messages), messages
    store.close()


def test_an_in_memory_database_keeps_the_writer_thread() -> None:
    """Another process cannot see this process's in-memory SQLite database."""
    assert PredictionLogger(Store("sqlite://"), process=True).process is False
    assert PredictionLogger(Store("sqlite:///:memory:"), process=True).process is False
    assert PredictionLogger(Store("sqlite:///some/file.db"), process=True).process is True


def test_the_writer_process_finishes_and_exits_when_the_server_is_killed(tmp_path: Path) -> None:
    """A server killed outright closes the pipe; the child writes the batch it holds, then exits."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = Store(url).open()
    store.migrate()
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from tests.monitoring.test_log_process import _records
        from modelward.monitoring.prediction_log import PredictionLogger
        from modelward.store import Store
        logger = PredictionLogger(Store({url!r}).open(), flush_interval=0.02, process=True).start()
        logger.submit(_records(40, prefix="first"))
        assert logger.flush(20)
        print(logger._child.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    child_pid = int(done.stdout.split()[0])
    wait_until(lambda: _gone(child_pid), timeout=10)
    assert len(_rows(store, "first")) == 40
    store.close()
