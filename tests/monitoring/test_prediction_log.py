"""The prediction log writer: batches, bounded queue, drops when the store is locked, sampling, redaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from modelward.errors import ConfigError
from modelward.monitoring import log_insert
from modelward.monitoring.prediction_log import LogStats, PredictionLogger, PredictionRecord, Redactor
from modelward.store import Store
from modelward.store.tables import predictions


def records(n: int, *, start: int = 0, model: str = "churn", **extra: Any) -> list[PredictionRecord]:
    return [
        PredictionRecord(
            request_id=f"r-{i}",
            ts=1_700_000_000.0 + i,
            model=model,
            version="1",
            inputs={"age": 30 + i % 40, "plan": "b", "email": f"u{i}@example.com"},
            outputs={"prediction": i % 2, "probabilities": {"0": 0.25, "1": 0.75}},
            latency_ms=1.5,
            **extra,
        )
        for i in range(start, start + n)
    ]


def stored(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(select(predictions).order_by(predictions.c.id)).all())


def stored_count(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(predictions)).scalar_one())


def balanced(stats: LogStats) -> bool:
    return stats.produced == stats.written + stats.dropped + stats.queued


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_batches_land_in_the_store_and_survive_close(store: Store) -> None:
    batches: list[int] = []
    logger = PredictionLogger(store, batch_size=50, flush_interval=0.02, on_written=batches.append).start()
    logger.submit(records(230, arm="champion", routing_key="cust-7"))
    logger.close()
    rows = stored(store)
    assert [r.request_id for r in rows] == [f"r-{i}" for i in range(230)]
    first = rows[0]
    assert (first.model, first.version, first.arm, first.routing_key) == ("churn", "1", "champion", "cust-7")
    assert first.ts == 1_700_000_000.0
    assert first.latency_ms == 1.5
    assert first.inputs == '{"age":30,"email":"u0@example.com","plan":"b"}'  # canonical: sorted, compact
    assert json.loads(first.outputs) == {"prediction": 0, "probabilities": {"0": 0.25, "1": 0.75}}
    assert sum(batches) == 230
    assert max(batches) <= 50
    assert logger.stats == LogStats(produced=230, written=230, dropped=0, queued=0, sampled_out=0)


@pytest.mark.parametrize("per_statement", [None, 7])
def test_a_large_batch_goes_in_as_multi_row_statements_every_row_once_in_order(
    store: Store, monkeypatch: pytest.MonkeyPatch, per_statement: int | None
) -> None:
    """One INSERT carries many rows (500, or what the database's parameter limit allows); with 7
    rows per statement, 1,234 rows cross 176 statement boundaries and the last one is short."""
    if per_statement is not None:
        monkeypatch.setattr(log_insert, "_rows_per_statement", lambda conn: per_statement)
    logger = PredictionLogger(store, batch_size=1300, capacity=5000, flush_interval=0.05).start()
    logger.submit(records(1234, arm="champion"))
    logger.close()
    rows = stored(store)
    assert [r.request_id for r in rows] == [f"r-{i}" for i in range(1234)]
    assert [r.ts for r in rows] == [1_700_000_000.0 + i for i in range(1234)]
    assert logger.stats.written == 1234


def test_flush_waits_for_the_in_flight_batch(store: Store) -> None:
    with PredictionLogger(store, flush_interval=0.02).start() as logger:
        for part in range(5):
            logger.submit(records(20, start=part * 20))
        assert logger.flush(timeout=10)
        assert stored_count(store) == 100
        assert logger.stats.queued == 0


def test_values_json_cannot_express_are_still_written(store: Store) -> None:
    odd = PredictionRecord("r", 1.0, "m", "1", {"x": float("nan"), "o": object(), "s": {3, 1}}, {}, 0.1)
    with PredictionLogger(store, flush_interval=0.02).start() as logger:
        logger.submit([odd])
        assert logger.flush(10)
    inputs = json.loads(stored(store)[0].inputs)
    assert inputs["x"] is None
    assert inputs["o"].startswith("<object object")
    assert inputs["s"] == [1, 3]


class _BlockedStore(Store):
    """A store whose writes wait until released: the writer thread is stuck mid-batch."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.release = threading.Event()

    @contextmanager
    def write(self) -> Iterator[Any]:
        self.release.wait(30)
        with super().write() as conn:
            yield conn


def test_submit_never_blocks_when_the_queue_is_full_and_counts_drops(tmp_path: Any) -> None:
    store = _BlockedStore(f"sqlite:///{tmp_path / 'm.db'}").open()
    store.release.set()
    store.migrate()
    store.release.clear()
    dropped: list[int] = []
    logger = PredictionLogger(
        store, capacity=10, batch_size=5, flush_interval=0.01, on_dropped=dropped.append
    ).start()
    wanted = records(10_000)
    # The writer is stuck until `release` is set: a submit that waited for it would never return.
    for record in wanted:
        logger.submit([record])
    stats = logger.stats
    assert stats.produced == 10_000
    assert stats.queued <= 10 + 5  # the queue plus the batch the writer holds
    assert stats.dropped >= 10_000 - 15
    assert sum(dropped) == stats.dropped
    assert balanced(stats)
    store.release.set()
    assert logger.flush(10)
    logger.close()
    final = logger.stats
    assert final.written == stored_count(store) == 10_000 - final.dropped
    assert final.produced == final.written + final.dropped
    store.close()


@contextmanager
def write_lock_held(store_url: str) -> Iterator[None]:
    """Another connection holds a lock that keeps every writer of modelward_predictions out."""
    if store_url.startswith("sqlite"):
        import sqlite3

        raw = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
        raw.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            raw.execute("ROLLBACK")
            raw.close()
    else:
        engine = create_engine(store_url)
        try:
            with engine.connect() as conn, conn.begin():
                conn.execute(text("LOCK TABLE modelward_predictions IN ACCESS EXCLUSIVE MODE"))
                yield
        finally:
            engine.dispose()


def test_store_locked_mid_run_drops_and_counts_then_recovers(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # busy_timeout_ms bounds the wait for the lock: SQLite's busy timeout, PostgreSQL's lock_timeout.
    # submit() never waits for the store: it returns well inside the 500 ms a write may wait for
    # the lock (the margin keeps a loaded machine's stall from reading as a wait).
    store = Store(store_url, busy_timeout_ms=500).open()
    store.migrate()
    logger = PredictionLogger(store, batch_size=10, flush_interval=0.02).start()
    logger.submit(records(20))
    assert logger.flush(10)
    assert logger.stats.written == 20
    caplog.set_level(logging.WARNING, logger="modelward.prediction_log")

    with write_lock_held(store_url):
        started = time.perf_counter()
        logger.submit(records(10, start=20))
        assert time.perf_counter() - started < 0.25
        wait_until(lambda: logger.stats.dropped >= 10)
        for part in range(4):
            started = time.perf_counter()
            logger.submit(records(10, start=30 + 10 * part))
            assert time.perf_counter() - started < 0.25
        wait_until(lambda: logger.stats.dropped == 50)
        assert logger.stats.written == 20
        assert balanced(logger.stats)

    logger.submit(records(30, start=100))
    assert logger.flush(10)
    logger.close()
    stats = logger.stats
    assert stats == LogStats(produced=100, written=50, dropped=50, queued=0, sampled_out=0)
    assert stored_count(store) == 50
    messages = [r.getMessage() for r in caplog.records if r.name == "modelward.prediction_log"]
    failures = [m for m in messages if "cannot write" in m]
    assert len(failures) == 1, messages  # one warning per failure streak, not per batch
    assert "dropped 10 records" in failures[0]
    assert any("writing again; 50 records were dropped" in m for m in messages), messages
    store.close()


def test_a_store_that_is_down_costs_drops_not_errors(tmp_path: Any) -> None:
    store = Store(f"sqlite:///{tmp_path / 'never-migrated.db'}").open()  # no table to write to
    logger = PredictionLogger(store, flush_interval=0.02).start()
    logger.submit(records(7))
    assert logger.flush(10)
    logger.close()
    assert logger.stats == LogStats(produced=7, written=0, dropped=7, queued=0, sampled_out=0)
    store.close()


def test_sampling_keeps_about_the_asked_share_and_counts_the_rest(store: Store) -> None:
    logger = PredictionLogger(store, capacity=20_000, sample_rate=0.1, seed=7)
    logger.submit(records(20_000))
    stats = logger.stats
    assert 1_600 <= stats.produced <= 2_400
    assert stats.sampled_out == 20_000 - stats.produced
    assert stats.queued == stats.produced
    none = PredictionLogger(store, sample_rate=0.0)
    none.submit(records(100))
    assert none.stats.produced == 0
    assert none.stats.sampled_out == 100


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_sample_rate_outside_zero_to_one_is_refused(store: Store, rate: float) -> None:
    with pytest.raises(ConfigError, match="sample rate"):
        PredictionLogger(store, sample_rate=rate)


def test_redaction_drops_and_hashes_with_a_keyed_hmac() -> None:
    redactor = Redactor({"email": "drop", "phone": "hash"}, secret="pepper")
    original = {"email": "a@b.c", "phone": "+33 1 23", "age": 41}
    out = redactor.apply(original)
    expected = "hmac:" + hmac.new(b"pepper", b'"+33 1 23"', hashlib.sha256).hexdigest()[:32]
    assert out == {"phone": expected, "age": 41}
    assert original == {"email": "a@b.c", "phone": "+33 1 23", "age": 41}  # untouched
    assert redactor.apply({"phone": "+33 1 23"})["phone"] == expected
    assert Redactor({"phone": "hash"}, secret="other").apply(original)["phone"] != expected
    assert Redactor({"phone": "hash"}, secret="pepper").apply({"phone": 5})["phone"] != expected
    assert "pepper" not in repr(redactor)


def test_hash_redaction_without_a_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="hash redaction needs a secret"):
        Redactor({"phone": "hash"})
    with pytest.raises(ConfigError, match="hash redaction needs a secret"):
        Redactor.from_spec("kind:email=hash")
    assert Redactor.from_spec("email=drop").rules == {"email": "drop"}  # dropping needs no key


def test_redaction_spec_parses_the_settings_form() -> None:
    spec = "email=drop, phone=hash, kind:card=drop, kind:email=hash"
    parsed = Redactor.from_spec(spec, secret="k")
    assert parsed.rules == {"email": "drop", "phone": "hash"}
    assert parsed.kinds == {"card": "drop", "email": "hash"}
    assert Redactor.from_spec("").rules == {}
    assert not Redactor.from_spec("").active
    with pytest.raises(ConfigError, match="unknown redaction 'mask' for 'email'"):
        Redactor.from_spec("email=mask")
    with pytest.raises(ConfigError, match=r"expected FIELD=drop\|hash or kind:KIND=drop\|hash"):
        Redactor.from_spec("email")
    with pytest.raises(ConfigError, match="unknown PII kind 'passport'"):
        Redactor.from_spec("kind:passport=drop")
    with pytest.raises(ValueError, match="use 'drop' or 'hash'"):
        Redactor({"email": "mask"})  # type: ignore[dict-item]


def test_records_are_redacted_before_they_are_stored(store: Store) -> None:
    redactor = Redactor.from_spec("email=hash", secret="s")
    with PredictionLogger(store, redactor=redactor, flush_interval=0.02).start() as logger:
        logger.submit(records(3))
    inputs = [json.loads(r.inputs) for r in stored(store)]
    assert [i["email"] for i in inputs] == [redactor.hash_value(f"u{i}@example.com") for i in range(3)]
    assert all(i["plan"] == "b" for i in inputs)


def test_close_is_idempotent_and_later_submits_are_counted_as_dropped(store: Store) -> None:
    logger = PredictionLogger(store, flush_interval=0.02).start()
    logger.submit(records(5))
    logger.close()
    logger.close()
    logger.submit(records(3, start=5))
    assert logger.stats == LogStats(produced=8, written=5, dropped=3, queued=0, sampled_out=0)
    with pytest.raises(ConfigError, match="closed"):
        logger.start()


def test_flush_without_a_writer_reports_false_and_close_drops_what_is_left(store: Store) -> None:
    logger = PredictionLogger(store)
    assert logger.flush(0.1)  # nothing queued
    logger.submit(records(4))
    assert not logger.flush(0.1)
    logger.close(timeout=0.1)
    assert logger.stats == LogStats(produced=4, written=0, dropped=4, queued=0, sampled_out=0)


def test_callbacks_get_the_counts_and_their_errors_break_nothing(store: Store) -> None:
    seen: dict[str, int] = {"produced": 0, "written": 0, "dropped": 0}

    def counter(kind: str) -> Any:
        def add(n: int) -> None:
            seen[kind] += n
            raise RuntimeError("metrics backend down")

        return add

    logger = PredictionLogger(
        store,
        capacity=30,
        flush_interval=0.02,
        on_produced=counter("produced"),
        on_written=counter("written"),
        on_dropped=counter("dropped"),
    )
    logger.submit(records(40))  # not started: 30 queued, 10 dropped at once
    logger.start()
    assert logger.flush(10)
    logger.close()
    assert seen == {"produced": 40, "written": 30, "dropped": 10}
    assert stored_count(store) == 30
