"""What a writer that dies holds is counted as lost by the next one: marks, their settlement, and the
writers' rows in the store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.monitoring.test_prediction_log import wait_until

from modelward.monitoring.log_marks import settle_dead
from modelward.monitoring.prediction_log import PredictionLogger, PredictionRecord
from modelward.store import Store
from modelward.store.tables import log_writers, predictions

_CRASHING_WRITER = """
import os, signal, sys
from modelward.monitoring.prediction_log import PredictionLogger, PredictionRecord
from modelward.store import Store

url, marks, process = sys.argv[1], sys.argv[2], sys.argv[3] == "process"
def rec(i):
    return PredictionRecord(f"k-{i}", 1.0 + i, "m", "1", {"x": i}, {"prediction": 1}, 1.0)
store = Store(url).open()
# The writer takes a batch when flushed or every 600 s: what is submitted after the flush stays queued.
logger = PredictionLogger(store, flush_interval=600, process=process, marks_dir=marks).start()
logger.announce(100)  # answered: their rows reach the logger after the answers are written
logger.submit([rec(i) for i in range(100)])
assert logger.flush(30)
logger.announce(50)
logger.submit([rec(i) for i in range(100, 120)])  # 20 queued, 30 still in post-processing
os.kill(os.getpid(), signal.SIGKILL)
"""


def writer_of(logger: PredictionLogger) -> str:
    assert logger.ledger is not None
    return logger.ledger.writer


def _writer_rows(store: Store) -> list:
    with store.read() as conn:
        return list(conn.execute(select(log_writers)).all())


@pytest.mark.parametrize("process", ["thread", "process"])
def test_what_a_killed_writer_held_is_settled_as_lost_by_the_next_one(
    store: Store, tmp_path: Path, process: str
) -> None:
    marks = tmp_path / "log-writers"
    script = textwrap.dedent(_CRASHING_WRITER)
    done = subprocess.run([sys.executable, "-c", script, store.url, str(marks), process], capture_output=True)
    assert done.returncode == -9, done.stderr.decode()
    with store.read() as conn:
        assert len(conn.execute(select(predictions.c.id)).all()) == 100
    (row,) = _writer_rows(store)
    assert (row.state, row.written) == ("running", 100)  # what its last batch's transaction recorded

    lost: list[int] = []
    logger = PredictionLogger(store, flush_interval=0.02, marks_dir=marks, on_lost=lost.append).start()
    wait_until(lambda: lost == [50], timeout=30)  # 20 queued + 30 announced, never submitted
    dead = next(r for r in _writer_rows(store) if r.writer == row.writer)
    assert (dead.state, dead.lost, dead.announced, dead.produced) == ("crashed", 50, 150, 120)
    assert [p.name for p in marks.iterdir()] == [f"{writer_of(logger)}.mark"]  # the dead one's is gone
    logger.close()
    assert list(marks.iterdir()) == []
    ours = next(r for r in _writer_rows(store) if r.writer == writer_of(logger))
    assert (ours.state, ours.lost) == ("closed", 0)


def test_a_mark_held_by_a_live_writer_is_left_alone_and_a_closed_one_leaves_none(
    store: Store, tmp_path: Path
) -> None:
    marks = tmp_path / "log-writers"
    alive = PredictionLogger(store, flush_interval=0.02, marks_dir=marks).start()
    alive.announce(5)  # answered, not yet submitted: a live writer's, not lost
    lost: list[int] = []
    assert settle_dead(store, marks, on_lost=lost.append) == (0, 1)
    assert lost == [] and (marks / f"{writer_of(alive)}.mark").exists()

    alive.submit([PredictionRecord(f"a-{i}", 1.0, "m", "1", {}, {}, 1.0) for i in range(5)])
    alive.close()
    assert list(marks.iterdir()) == []
    (row,) = _writer_rows(store)
    assert (row.state, row.written, row.announced, row.lost) == ("closed", 5, 5, 0)


def test_a_mark_of_another_database_is_left_for_that_database(store: Store, tmp_path: Path) -> None:
    marks = tmp_path / "log-writers"
    other = Store(f"sqlite:///{tmp_path / 'other.db'}").open()
    other.migrate()
    script = textwrap.dedent(_CRASHING_WRITER)
    done = subprocess.run(
        [sys.executable, "-c", script, other.url, str(marks), "thread"], capture_output=True
    )
    assert done.returncode == -9, done.stderr.decode()
    assert settle_dead(store, marks) == (0, 0)
    assert len(os.listdir(marks)) == 1
    lost: list[int] = []
    assert settle_dead(other, marks, on_lost=lost.append) == (1, 0)
    assert lost == [50] and os.listdir(marks) == []
    other.close()
